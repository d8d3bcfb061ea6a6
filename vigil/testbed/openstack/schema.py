"""The services' schema migrations and Nova's cells, run once when the stack is set up.

Each project migrates its own databases with its own tool; they take 5-25 s
each on this machine, mostly interpreter start-up and imports, so the four
chains (Keystone, Placement, Neutron, Nova) run side by side. Nova's chain
is ordered: the API database, then cell0's mapping, then cell1, then the
cell database. Each chain logs to ``logs/setup-NAME.log``.
"""

import subprocess
import threading
from collections.abc import Callable

from vigil.testbed.openstack import keystone
from vigil.testbed.openstack.layout import Layout, database_url


class SchemaError(RuntimeError):
    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def _chain(layout: Layout, name: str, commands: list[list[str]], ok_codes: dict[int, set[int]] | None = None) -> None:
    log = layout.log(f"setup-{name}")
    with log.open("a") as out:
        for index, argv in enumerate(commands):
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=600)
            if done.returncode != 0 and done.returncode not in (ok_codes or {}).get(index, set()):
                raise SchemaError(f"{name}: '{' '.join(argv[:1] + argv[-2:])}' failed (exit {done.returncode})", name)


def placement_commands(layout: Layout) -> list[list[str]]:
    conf = str(layout.etc / "placement" / "placement.conf")
    return [[str(layout.bin("placement-manage")), "--config-file", conf, "db", "sync"]]


def neutron_commands(layout: Layout) -> list[list[str]]:
    etc = layout.etc / "neutron"
    return [
        [
            str(layout.bin("neutron-db-manage")),
            "--config-file",
            str(etc / "neutron.conf"),
            "--config-file",
            str(etc / "plugins" / "ml2" / "ml2_conf.ini"),
            "upgrade",
            "heads",
        ]
    ]


def nova_commands(layout: Layout) -> list[list[str]]:
    manage = [str(layout.bin("nova-manage")), "--config-file", str(layout.etc / "nova" / "nova.conf")]
    return [
        [*manage, "api_db", "sync"],
        [*manage, "cell_v2", "map_cell0", "--database_connection", database_url("nova_cell0")],
        [*manage, "cell_v2", "create_cell", "--name", "cell1"],
        [*manage, "db", "sync"],
    ]


# nova-manage cell_v2 create_cell exits 2 when the cell exists: a set-up run again after a failure.
NOVA_OK = {2: {2}}


def migrate_all(layout: Layout, admin_password: str) -> None:
    """Run the four chains at once; raise the first failure with the name of its log."""
    jobs: dict[str, Callable[[], None]] = {
        "keystone": lambda: keystone.bootstrap(layout, admin_password),
        "placement": lambda: _chain(layout, "placement", placement_commands(layout)),
        "neutron": lambda: _chain(layout, "neutron", neutron_commands(layout)),
        "nova": lambda: _chain(layout, "nova", nova_commands(layout), NOVA_OK),
    }
    errors: dict[str, BaseException] = {}

    def run(name: str, job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # reported below, in the caller's thread
            errors[name] = exc

    threads = [threading.Thread(target=run, args=item, name=f"migrate-{item[0]}") for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, exc in errors.items():
        raise SchemaError(f"setting up {name} failed: {exc}", name) from exc
