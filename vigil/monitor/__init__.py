"""Doctor's monitor inside Vigil: the heartbeat monitor of the compute hosts' agents.

``session`` is the pure, BFD-like detection state machine of one host (INIT,
UP, DOWN, hold-down; "now" passed in); ``monitor`` runs one session per
host, arms one timer per host at its deadline, and reports
``compute.host.down``/``up`` to the inspector through a port (in process,
no HTTP hop). The UDP socket is an adapter (:mod:`vigil.heartbeat`); the
agents that send the heartbeats are :mod:`vigil.agent`.
"""
