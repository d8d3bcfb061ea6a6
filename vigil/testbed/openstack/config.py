"""The stack's configuration files, written from the layout and the stack's passwords.

Everything here is a choice a test stack makes and a production cloud would
not, or a fix for an obstacle found in the trial (``shared/openstack.md``);
each is said where it is made:

* Keystone with fernet tokens in MariaDB; every API (Nova, Placement,
  Neutron) checks tokens with keystonemiddleware's ``authtoken`` as a real
  cloud does, and the services reach each other with their own users
  (``nova``, ``placement``, ``neutron`` in project ``service``, roles admin
  and service) through the catalog.
* Nova's fake virt driver, one ``nova-compute`` per fake host
  (``compute-N``), each with its own ``state_path`` (the fake driver must
  find its ``compute_id`` again after a restart).
* Fast failure detection and host discovery (``report_interval = 2``,
  ``service_down_time = 10``, ``periodic_fuzzy_delay = 0``,
  ``discover_hosts_in_cells_interval = 2``), one worker per service.
* Versioned notifications on the stack's vhost (exchange ``nova``, queue
  ``versioned_notifications.info``).
* Neutron ML2 with the agentless ``bindall`` driver; ports never wait for
  VIF-plugged events, which only agents send.
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vigil.testbed.openstack.layout import (
    ADMIN_PROJECT,
    ADMIN_USER,
    HOST,
    IMAGE_URL,
    KEYSTONE_URL,
    NOTIFICATION_EXCHANGE,
    NOTIFICATION_QUEUE,
    PORTS,
    REGION,
    SERVICE_PROJECT,
    Layout,
    amqp_url,
    database_url,
    transport_url,
)

FILES = Path(__file__).parent / "files"


@dataclass(frozen=True, slots=True)
class Secrets:
    """The stack's passwords, made once by ``up`` and kept in ``stack.json`` (0600)."""

    admin_password: str
    service_password: str


def _write(path: Path, text: str) -> None:
    """Owner-only from the first byte: configs hold the services' passwords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text.lstrip("\n"))


def _auth_section(section: str, user: str, secrets: Secrets, *, extra: str = "") -> str:
    """A keystoneauth password section (a service's own user in project ``service``)."""
    return f"""
[{section}]
auth_type = password
auth_url = {KEYSTONE_URL}
username = {user}
password = {secrets.service_password}
project_name = {SERVICE_PROJECT}
user_domain_name = Default
project_domain_name = Default
region_name = {REGION}
{extra}"""


def _authtoken(user: str, secrets: Secrets) -> str:
    # No memcached on this machine: the middleware caches validated tokens in process.
    return _auth_section("keystone_authtoken", user, secrets, extra=f"www_authenticate_uri = {KEYSTONE_URL}\n")


def keystone_conf(layout: Layout) -> str:
    keys = layout.state / "keystone"
    return f"""
[DEFAULT]
debug = False
[database]
connection = {database_url("keystone")}
[token]
provider = fernet
[fernet_tokens]
key_repository = {keys}/fernet-keys
[fernet_receipts]
key_repository = {keys}/fernet-keys
[credential]
key_repository = {keys}/credential-keys
[identity]
# bcrypt's default (12 rounds) costs ~0.25 s of a core per password check; a test stack has no use for it.
password_hash_rounds = 4
[cache]
# Without a cache every token validation recomputes the role assignments (~450 queries, 0.5 s of a core).
# The in-process backend is coherent here because Keystone runs one worker.
enabled = True
backend = dogpile.cache.memory
[oslo_policy]
enforce_scope = False
enforce_new_defaults = False
"""


def placement_conf(layout: Layout, secrets: Secrets) -> str:
    return f"""
[DEFAULT]
debug = False
[api]
auth_strategy = keystone
[placement_database]
connection = {database_url("placement")}
""" + _authtoken("placement", secrets)


def nova_conf(layout: Layout, secrets: Secrets) -> str:
    return (
        f"""
[DEFAULT]
transport_url = {transport_url()}
compute_driver = fake.FakeDriverWithoutFakeNodes
state_path = {layout.state}/nova
my_ip = {HOST}
host = controller
# stop within seconds on SIGTERM, not oslo.service's 60
graceful_shutdown_timeout = 3
# fast failure detection for tests (defaults 10 / 60)
report_interval = 2
service_down_time = 10
# no random 0-60 s delay before periodic tasks (host discovery among them)
periodic_fuzzy_delay = 0
# no Neutron agents, so no network-vif-plugged events to wait for
vif_plugging_is_fatal = False
vif_plugging_timeout = 0
[wsgi]
api_paste_config = {layout.etc}/nova/api-paste.ini
[api]
auth_strategy = keystone
[api_database]
connection = {database_url("nova_api")}
[database]
connection = {database_url("nova_cell1")}
[oslo_concurrency]
lock_path = {layout.state}/lock
[glance]
valid_interfaces = public
region_name = {REGION}
[compute]
live_migration_wait_for_vif_plug = False
[conductor]
workers = 1
[quota]
# a test and benchmark stack: Doctor's 50-server runs must not stop at the default 10 instances per project
instances = -1
cores = -1
ram = -1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 2
[filter_scheduler]
# identical fake hosts all weigh the same: spread servers instead of stacking them on one
shuffle_best_same_weighed_hosts = True
[notifications]
notification_format = versioned
notify_on_state_change = vm_and_task_state
[oslo_messaging_notifications]
driver = messagingv2
[oslo_policy]
enforce_scope = False
enforce_new_defaults = True
[vnc]
enabled = False
[serial_console]
enabled = False
[spice]
enabled = False
"""
        + _authtoken("nova", secrets)
        + _auth_section("placement", "nova", secrets, extra="valid_interfaces = public\n")
        + _auth_section("neutron", "nova", secrets, extra="valid_interfaces = public\n")
        + _auth_section("service_user", "nova", secrets, extra="send_service_user_token = True\n")
    )


def compute_conf(layout: Layout, index: int) -> str:
    state = layout.state / f"compute-{index}"
    return f"""
[DEFAULT]
host = compute-{index}
state_path = {state}
instances_path = {state}/instances
"""


def neutron_conf(layout: Layout, secrets: Secrets) -> str:
    return (
        f"""
[DEFAULT]
core_plugin = ml2
service_plugins =
auth_strategy = keystone
transport_url = {transport_url()}
api_paste_config = {layout.etc}/neutron/api-paste.ini
state_path = {layout.state}/neutron
notify_nova_on_port_status_changes = True
notify_nova_on_port_data_changes = True
api_workers = 1
rpc_workers = 0
graceful_shutdown_timeout = 3
[database]
connection = {database_url("neutron")}
[oslo_concurrency]
lock_path = {layout.state}/lock
[oslo_policy]
policy_file = {layout.etc}/neutron/policy.yaml
enforce_scope = False
enforce_new_defaults = True
"""
        + _authtoken("neutron", secrets)
        + _auth_section("nova", "nova", secrets, extra="valid_interfaces = public\n")
    )


ML2_CONF = """
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = bindall
extension_drivers = port_security,data_plane_status
[ml2_type_vxlan]
vni_ranges = 1:1000
[ml2_type_flat]
flat_networks = *
"""

# Port binding updates (live migration, evacuation) need role service under the new defaults;
# let admin do them too, as Nova's user has both.
NEUTRON_POLICY = '"service_api": "role:service or role:admin"\n'


def write_all(layout: Layout, secrets: Secrets, computes: int) -> None:
    """Write every file the services read (idempotent: the same inputs give the same files)."""
    etc = layout.etc
    _write(etc / "keystone" / "keystone.conf", keystone_conf(layout))
    _write(etc / "placement" / "placement.conf", placement_conf(layout, secrets))
    _write(etc / "nova" / "nova.conf", nova_conf(layout, secrets))
    _write(etc / "nova" / "api-paste.ini", (layout.venv / "etc" / "nova" / "api-paste.ini").read_text())
    for index in range(1, computes + 1):
        (layout.state / f"compute-{index}" / "instances").mkdir(parents=True, exist_ok=True)
        _write(layout.compute_conf(index), compute_conf(layout, index))
    _write(etc / "neutron" / "neutron.conf", neutron_conf(layout, secrets))
    _write(etc / "neutron" / "plugins" / "ml2" / "ml2_conf.ini", ML2_CONF)
    _write(etc / "neutron" / "policy.yaml", NEUTRON_POLICY)
    _write(etc / "neutron" / "api-paste.ini", (layout.venv / "etc" / "neutron" / "api-paste.ini").read_text())
    for sub in ("nova", "neutron", "lock", "keystone"):
        (layout.state / sub).mkdir(parents=True, exist_ok=True)
    copy_helpers(layout)


def copy_helpers(layout: Layout) -> None:
    """The modules run with the stack's interpreter (WSGI entry points, notification tap), fresh from Vigil."""
    layout.lib.mkdir(parents=True, exist_ok=True)
    for name in ("vigil_os_wsgi.py", "vigil_os_notifications.py"):
        shutil.copyfile(FILES / name, layout.lib / name)


def credentials(secrets: Secrets) -> dict[str, object]:
    """What a client (Vigil's OpenStack driver, a test, a person) needs to use the stack."""
    return {
        "auth_url": KEYSTONE_URL,
        "username": ADMIN_USER,
        "password": secrets.admin_password,
        "project_name": ADMIN_PROJECT,
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "region_name": REGION,
        "interface": "public",
        "endpoints": {
            "identity": KEYSTONE_URL,
            "compute": f"http://{HOST}:{PORTS['nova-api']}/v2.1",
            "placement": f"http://{HOST}:{PORTS['placement']}",
            "network": f"http://{HOST}:{PORTS['neutron-api']}",
            "image": IMAGE_URL,
        },
        "notifications": {
            "amqp_url": amqp_url(),
            "exchange": NOTIFICATION_EXCHANGE,
            "queue": NOTIFICATION_QUEUE,
            "format": "versioned (oslo envelope 2.0)",
        },
    }


def openrc(secrets: Secrets) -> str:
    return f"""# source me: the stack's admin for the openstack client (written by 'vigil testbed openstack up')
export OS_AUTH_URL={KEYSTONE_URL}
export OS_USERNAME={ADMIN_USER}
export OS_PASSWORD={secrets.admin_password}
export OS_PROJECT_NAME={ADMIN_PROJECT}
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME={REGION}
export OS_IDENTITY_API_VERSION=3
export OS_INTERFACE=public
"""


def write_credentials(layout: Layout, secrets: Secrets) -> None:
    _write(layout.credentials_file, json.dumps(credentials(secrets), indent=2) + "\n")
    _write(layout.openrc_file, openrc(secrets))
