"""Identifier types.

Every resource is named by a plain string on the wire and in the store; the
``NewType`` wrappers only keep a host name from being passed where an
instance id is expected.
"""

from typing import NewType

HostName = NewType("HostName", str)
SwitchName = NewType("SwitchName", str)
ProjectId = NewType("ProjectId", str)
InstanceId = NewType("InstanceId", str)
PortId = NewType("PortId", str)
GroupId = NewType("GroupId", str)
