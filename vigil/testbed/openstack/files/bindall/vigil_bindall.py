"""An ML2 mechanism driver that binds every port at once, with no agent.

Vigil's test stack runs Neutron's API and nothing else: the Open vSwitch and
OVN drivers only bind a port on a host whose agent (or OVN chassis) they
know, so Nova could not boot, migrate or evacuate a server with a port.
This driver binds each port on its first segment as ``vif_type ovs`` and
marks it ACTIVE; Nova's fake virt driver plugs nothing, so that is enough
for ports, bindings (including live migration's second binding) and
``data_plane_status`` to behave as on a real cloud. It runs inside the
stack's own virtual environment (Neutron's), installed there by
``vigil testbed openstack up``; Vigil never imports it.
"""

# mypy: disable-error-code="import-not-found,misc"
# (Type-checked with Vigil's interpreter, where Neutron is not installed: neutron_lib is Any here.)

from typing import Any

from neutron_lib import constants
from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllDriver(api.MechanismDriver):
    """Bind every port on its first segment; every host reaches every segment (the default filter)."""

    def initialize(self) -> None:
        """Nothing to set up: no agents, no backend."""

    def bind_port(self, context: Any) -> None:
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID],
                portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True, portbindings.OVS_HYBRID_PLUG: False},
                status=constants.PORT_STATUS_ACTIVE,
            )
            return
