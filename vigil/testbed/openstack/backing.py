"""The stack's share of the machine's MariaDB and RabbitMQ: its databases and its vhost.

The services keep their state in the machine's MariaDB (127.0.0.1:3306,
root without a password) and talk over its RabbitMQ (127.0.0.1:5672,
guest/guest), as a small real deployment would; the stack owns only the
databases named ``vigil_os_*`` and the vhost ``vigil_os``, so ``down`` can
drop them without touching anybody else's. Done with the ``mysql`` and
``rabbitmqctl`` command-line tools that come with the servers, so Vigil's
environment needs no database or AMQP driver for it.
"""

import shutil
import socket
import subprocess

from vigil.testbed.openstack.layout import AMQP_USER, DATABASES, DB_PREFIX, VHOST, database


class BackingError(RuntimeError):
    pass


def reachable(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _run(argv: list[str], what: str) -> str:
    if shutil.which(argv[0]) is None:
        raise BackingError(f"'{argv[0]}' is not installed: it is needed to {what}")
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise BackingError(f"could not {what}: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def _mysql(sql: str, what: str) -> str:
    return _run(["mysql", "-uroot", "-h127.0.0.1", "-P3306", "--batch", "--skip-column-names", "-e", sql], what)


def check_servers() -> None:
    """Fail early, naming the missing server, rather than in a migration's traceback."""
    for name, port in (("MariaDB", 3306), ("RabbitMQ", 5672)):
        if not reachable("127.0.0.1", port):
            raise BackingError(f"{name} is not reachable at 127.0.0.1:{port}")


def existing_databases() -> list[str]:
    out = _mysql(f"SHOW DATABASES LIKE '{DB_PREFIX}%'", "list the databases")
    return [line.strip() for line in out.splitlines() if line.strip()]


def create_databases() -> None:
    sql = " ".join(f"CREATE DATABASE IF NOT EXISTS {database(name)} CHARACTER SET utf8mb4;" for name in DATABASES)
    _mysql(sql, "create the stack's databases")


def drop_databases() -> list[str]:
    """Drop every ``vigil_os_*`` database (also those of an older layout); return their names."""
    names = existing_databases()
    if names:
        _mysql(" ".join(f"DROP DATABASE IF EXISTS `{name}`;" for name in names), "drop the stack's databases")
    return names


def vhost_exists(vhost: str = VHOST) -> bool:
    out = _run(["rabbitmqctl", "-q", "list_vhosts"], "list RabbitMQ's vhosts")
    return vhost in {line.strip() for line in out.splitlines()}


def create_vhost(vhost: str = VHOST) -> None:
    if not vhost_exists(vhost):
        _run(["rabbitmqctl", "-q", "add_vhost", vhost], f"add the vhost {vhost}")
    _run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, AMQP_USER, ".*", ".*", ".*"],
        f"give {AMQP_USER} the vhost {vhost}",
    )


def delete_vhost(vhost: str = VHOST) -> bool:
    if not vhost_exists(vhost):
        return False
    _run(["rabbitmqctl", "-q", "delete_vhost", vhost], f"delete the vhost {vhost}")
    return True


def mapped_hosts() -> set[str]:
    """Compute hosts that Nova's host discovery has mapped to a cell (only those get servers)."""
    out = _mysql(f"SELECT host FROM {database('nova_api')}.host_mappings", "read Nova's host mappings")
    return {line.strip() for line in out.splitlines() if line.strip()}
