"""Adapters of the heartbeat monitor: the UDP socket the agents' heartbeats arrive on."""

from vigil.heartbeat.udp import HeartbeatListener

__all__ = ["HeartbeatListener"]
