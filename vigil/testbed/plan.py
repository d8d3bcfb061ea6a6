"""Names and addresses of a testbed: pure functions, no I/O.

Everything the testbed creates is named with :data:`PREFIX`. Addresses come
from the RFC 2544 benchmarking ranges only:

=====================  ===============  ====================================
network                range            addresses
=====================  ===============  ====================================
management (vgt-mgmt)  198.18.0.0/24    controller .2, host i at .(10+i)
controller API link    198.18.1.0/30    root side .1, controller side .2
BMC network (vgt-bmc)  198.18.2.0/24    root namespace (the bridge) .1,
                                        controller .2, host i's BMC at
                                        .(10+i), all in namespace vgt-bmc
data centre (vgt-dc)   198.19.0.0/24    gateway .1, host i at .(10+i),
                                        the service address (VIP) .250
=====================  ===============  ====================================

Interfaces inside a host namespace are ``vgt-mgmt0`` and ``vgt-dc0``;
their peers in the root namespace (enslaved to the bridges) are
``vgt-hI-m`` and ``vgt-hI-d``. The BMC network is out of band, as a
real one is: the hosts have no link to it. Its bridge carries the root
namespace's address (so ``vigil fence`` works from a shell), the
controller's ``vgt-bmc0`` (peer ``vgt-ctl-b``), and the ``vgt-bmc0`` of
namespace ``vgt-bmc`` (peer ``vgt-bmc-b``), which holds every host's BMC
address: one process there emulates them all, IPMI on UDP port 623 and
Redfish over HTTPS on TCP port 443 (:mod:`vigil.testbed.bmc`).
"""

from dataclasses import dataclass

PREFIX = "vgt-"
MAX_HOSTS = 200

MGMT_BRIDGE = "vgt-mgmt"
DC_BRIDGE = "vgt-dc"
# Every testbed address is in RFC 2544's benchmarking range (which Vigil's callback policy must allow).
TESTBED_NETWORK = "198.18.0.0/15"
MGMT_NET = "198.18.0"
DC_NET = "198.19.0"
PREFIXLEN = 24

CTL_NS = "vgt-ctl"
CTL_MGMT_IP = f"{MGMT_NET}.2"
API_ROOT_IF = "vgt-ctl-api"  # in the root namespace
API_CTL_IF = "vgt-api0"  # in vgt-ctl
API_ROOT_IP = "198.18.1.1"
API_CTL_IP = "198.18.1.2"
API_PREFIXLEN = 30
API_PORT = 8770
HEARTBEAT_PORT = 8771

GW_NS = "vgt-gw"
GW_IP = f"{DC_NET}.1"

SERVICE_IP = f"{DC_NET}.250"  # the VNF's service address, held by its active instance
SERVICE_PORT = 7000

BMC_BRIDGE = "vgt-bmc"
BMC_NET = "198.18.2"
BMC_ROOT_IP = f"{BMC_NET}.1"  # the bridge's own address, in the root namespace
CTL_BMC_IP = f"{BMC_NET}.2"
BMC_NS = "vgt-bmc"  # the BMC emulators' namespace (a namespace and a link may share a name)
BMC_IF = "vgt-bmc0"  # in vgt-bmc and in vgt-ctl
BMC_PEER = "vgt-bmc-b"  # vgt-bmc's peer, on the bridge
CTL_BMC_PEER = "vgt-ctl-b"  # vgt-ctl's peer, on the bridge
IPMI_PORT = 623  # UDP, RMCP+ (IPMI 2.0)
REDFISH_PORT = 443  # TCP, HTTPS with a self-signed certificate
BMC_USER = "admin"

NS_MGMT_IF = "vgt-mgmt0"
NS_DC_IF = "vgt-dc0"
NFT_TABLE = "vgt-loss"


@dataclass(frozen=True, slots=True)
class HostPlan:
    index: int

    @property
    def name(self) -> str:
        """The compute host's name in Vigil's topology."""
        return f"compute-{self.index}"

    @property
    def netns(self) -> str:
        return f"{PREFIX}h{self.index}"

    @property
    def mgmt_ip(self) -> str:
        return f"{MGMT_NET}.{10 + self.index}"

    @property
    def dc_ip(self) -> str:
        return f"{DC_NET}.{10 + self.index}"

    @property
    def bmc_ip(self) -> str:
        """Its BMC's address (IPMI and Redfish), on the BMC network."""
        return f"{BMC_NET}.{10 + self.index}"

    @property
    def fence_agent(self) -> str:
        """How the testbed fences it: odd hosts by IPMI, even ones by Redfish (both BMCs serve every host)."""
        return "fence_ipmilan" if self.index % 2 else "fence_redfish"

    @property
    def mgmt_peer(self) -> str:
        return f"{PREFIX}h{self.index}-m"

    @property
    def dc_peer(self) -> str:
        return f"{PREFIX}h{self.index}-d"


def hosts(count: int) -> list[HostPlan]:
    if not 1 <= count <= MAX_HOSTS:
        raise ValueError(f"a testbed has 1 to {MAX_HOSTS} hosts, not {count}")
    return [HostPlan(i) for i in range(1, count + 1)]


def host_by_name(count: int, name: str) -> HostPlan:
    """A host by its compute name (``compute-2``), namespace (``vgt-h2``) or index (``2``)."""
    for plan in hosts(count):
        if name in (plan.name, plan.netns, str(plan.index)):
            return plan
    raise ValueError(f"no host {name!r} in this testbed (compute-1 .. compute-{count})")


def api_url() -> str:
    """The controller's API as the root namespace reaches it."""
    return f"http://{API_CTL_IP}:{API_PORT}"


def mgmt_api_url() -> str:
    """The controller's API as the hosts (their agents) reach it."""
    return f"http://{CTL_MGMT_IP}:{API_PORT}"


def heartbeat_address() -> str:
    return f"{CTL_MGMT_IP}:{HEARTBEAT_PORT}"


def fence_device(host: HostPlan, password_file: str, timeout_s: float = 30.0) -> dict[str, object]:
    """``host``'s entry in Vigil's ``fencing.devices``: its :attr:`HostPlan.fence_agent` at its BMC address,
    the password read from ``password_file`` at each call."""
    options: dict[str, str] = {"ip": host.bmc_ip, "username": BMC_USER}
    if host.fence_agent == "fence_ipmilan":
        options.update(ipport=str(IPMI_PORT), lanplus="1")
    else:
        options.update(ipport=str(REDFISH_PORT), ssl_insecure="1", systems_uri=f"/redfish/v1/Systems/{host.name}")
    return {
        "agent": host.fence_agent,
        "options": options,
        "secret_files": {"password": password_file},
        "timeout_s": timeout_s,
    }


def fence_devices(count: int, password_file: str) -> dict[str, dict[str, object]]:
    """Vigil's ``fencing.devices`` for the testbed's hosts (see :func:`fence_device`)."""
    return {h.name: fence_device(h, password_file) for h in hosts(count)}


def vigil_topology(count: int, project: str, *, pair: bool = True) -> dict[str, object]:
    """Vigil's topology for the testbed: its hosts on one switch, and ``project``'s
    ACT/STBY pair in an anti-affinity group (ACT on compute-1, STBY on compute-2)."""
    topo: dict[str, object] = {
        "switches": [{"name": "tor-1"}],
        "hosts": [{"name": h.name, "zone": "az-1", "switch": "tor-1", "vcpus": 8} for h in hosts(count)],
        "projects": [{"id": project, "name": "Testbed VNF"}],
        "server_groups": [{"id": f"{project}-ha", "name": "app-ha", "project": project, "policy": "anti-affinity"}],
        "instances": [],
    }
    if pair and count >= 2:
        topo["instances"] = [
            {
                "id": f"{project}-{role.lower()}-1",
                "name": f"app-{role.lower()}",
                "project": project,
                "group": f"{project}-ha",
                "host": host,
                "metadata": {"role": role},
            }
            for role, host in (("ACT", "compute-1"), ("STBY", "compute-2"))
        ]
    return topo
