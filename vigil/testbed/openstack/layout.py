"""Where the stack keeps everything, its names on the shared servers, and its ports.

One module owns every path and name so that ``up``, ``status`` and ``down``
cannot disagree about them: ``down`` must find, after a crash, exactly what
``up`` made. The stack lives in one directory (``--base-dir``,
``VIGIL_OPENSTACK_DIR``, default ``/var/tmp/vigil-openstack``: under
``/var/tmp`` so that its 600 MB virtual environment survives a reboot and
a second ``up`` does not reinstall it)::

    venv/                  the stack's own Python: Nova's dependencies never enter Vigil's
    etc/{keystone,nova,placement,neutron}/   configuration files
    lib/                   small modules the services import (WSGI entry points)
    state/                 state_path of each service, fernet keys, locks
    pids/NAME.pid, logs/NAME.log            the processes ``up`` started
    stack.json             what ``up`` set up (computes, databases, vhost, password)
    lock                   held by ``up`` and ``down`` (one at a time)
    credentials.json, admin-openrc          what a client needs (mode 0600)

On the machine's MariaDB and RabbitMQ the stack owns the databases named
``vigil_os_*`` and the vhost ``vigil_os``; the ports are fixed (one stack per
machine) and are the usual OpenStack ones, which no Vigil test uses.
"""

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASE_DIR = Path("/var/tmp/vigil-openstack")

PINS = {
    "nova": "34.0.0",
    "openstack-placement": "16.0.0",
    "neutron": "29.0.0",
    "keystone": "30.0.0",
}
# Unpinned helpers: gunicorn serves the WSGI-only APIs, PyMySQL is the DB driver the URLs name,
# python-openstackclient lets a person poke at the stack (and pulls kombu in for the notification tap).
EXTRAS = ("gunicorn", "PyMySQL", "python-openstackclient")

HOST = "127.0.0.1"
PORTS = {"keystone": 5000, "nova-api": 8774, "placement": 8778, "neutron-api": 9696, "glance": 9292}

DB_URL = "mysql+pymysql://root@127.0.0.1:3306"
DB_PREFIX = "vigil_os_"
DATABASES = ("keystone", "nova_api", "nova_cell0", "nova_cell1", "placement", "neutron")
VHOST = "vigil_os"
AMQP_USER = "guest"
AMQP_PASSWORD = "guest"
AMQP_HOST_PORT = "127.0.0.1:5672"

REGION = "RegionOne"
ADMIN_USER = "admin"
ADMIN_PROJECT = "admin"
SERVICE_PROJECT = "service"
SERVICE_USERS = ("nova", "placement", "neutron")

NOTIFICATION_EXCHANGE = "nova"
NOTIFICATION_QUEUE = "versioned_notifications.info"


def default_base_dir() -> Path:
    return Path(os.environ.get("VIGIL_OPENSTACK_DIR") or DEFAULT_BASE_DIR)


def database(name: str) -> str:
    """The real database name of one of :data:`DATABASES`."""
    return DB_PREFIX + name


def database_url(name: str) -> str:
    return f"{DB_URL}/{database(name)}"


def amqp_url(vhost: str = VHOST) -> str:
    return f"amqp://{AMQP_USER}:{AMQP_PASSWORD}@{AMQP_HOST_PORT}/{vhost}"


def transport_url(vhost: str = VHOST) -> str:
    """oslo.messaging's spelling of :func:`amqp_url`."""
    return f"rabbit://{AMQP_USER}:{AMQP_PASSWORD}@{AMQP_HOST_PORT}/{vhost}"


def url(service: str, path: str = "") -> str:
    return f"http://{HOST}:{PORTS[service]}{path}"


KEYSTONE_URL = url("keystone", "/v3")
COMPUTE_URL = url("nova-api", "/v2.1")
PLACEMENT_URL = url("placement")
NETWORK_URL = url("neutron-api")
IMAGE_URL = url("glance")


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of one stack directory."""

    base: Path

    @property
    def venv(self) -> Path:
        return self.base / "venv"

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    @property
    def python(self) -> Path:
        return self.bin("python")

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def lib(self) -> Path:
        return self.base / "lib"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def pids(self) -> Path:
        return self.base / "pids"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @property
    def stack_file(self) -> Path:
        return self.base / "stack.json"

    @property
    def lock_file(self) -> Path:
        return self.base / "lock"

    @property
    def credentials_file(self) -> Path:
        return self.base / "credentials.json"

    @property
    def openrc_file(self) -> Path:
        return self.base / "admin-openrc"

    def compute_conf(self, index: int) -> Path:
        return self.etc / "nova" / f"compute-{index}.conf"

    def prepare(self) -> None:
        """Make the directories; owner-only, since configs and credentials hold passwords."""
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o700)
        for sub in (self.etc, self.lib, self.state, self.pids, self.logs):
            sub.mkdir(parents=True, exist_ok=True)
