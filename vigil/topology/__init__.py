"""Topology adapters: read the description of a cloud from outside Vigil.

``yaml_file`` parses a topology file such as ``examples/cloud.yaml`` into a
:class:`vigil.domain.topology.Topology`, refusing a bad file as a whole with
every problem named (:class:`vigil.domain.errors.InvalidTopology`). The
embedded cloud's ``bootstrap`` (``vigil.controller.cloud``) then places the
instances that have no host and gives every instance a port.
"""
