"""``vigil agent``, the host agent: it runs on each compute host and talks to Vigil
only over the network (like :mod:`vigil.consumer`, it imports none of Vigil's engines).

``heartbeat`` sends the UDP heartbeats the heartbeat monitor watches;
``carrier`` watches the data-plane NICs through netlink; ``probes`` pings the
data-plane gateway and checks named processes; ``reporter`` posts what they
find to Vigil's southbound API; ``agent`` puts them together and ``command``
is the command line. ``netns`` opens sockets inside a network namespace.
"""
