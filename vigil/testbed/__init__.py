"""The testbed: real compute hosts as Linux network namespaces, real faults.

``vigil testbed up --hosts N`` builds, on this machine (root needed):

* namespaces ``vgt-h1`` .. ``vgt-hN``, one per compute host (``compute-1``
  .. ``compute-N`` in Vigil's topology), each with a management veth into
  the bridge ``vgt-mgmt`` (198.18.0.0/24) and a data-plane veth into the
  bridge ``vgt-dc`` (198.19.0.0/24), both RFC 2544 benchmarking ranges;
* ``vgt-gw``, the data-centre gateway (198.19.0.1), where the workload's
  probe client runs;
* ``vgt-ctl``, Vigil's controller side: ``vigil serve`` with the testbed's
  topology and the heartbeat monitor, on 198.18.0.2; the root namespace
  (the orchestrating demo, bench or test) reaches its API over a veth of
  its own, ``vgt-ctl-api`` (198.18.1.1) to ``vgt-api0`` (198.18.1.2), and
  nothing else;
* ``vgt-bmc``, the hosts' BMCs: the BMC network (bridge ``vgt-bmc``,
  198.18.2.0/24: the root namespace on .1, ``vgt-ctl`` on .2) with host
  i's BMC at 198.18.2.(10+i), an IPMI (UDP 623) and a Redfish (HTTPS 443)
  BMC each, powering the host off (every process of its namespace killed,
  its links down) and on (links up, its agent started again); a fence
  device per host (odd hosts ``fence_ipmilan``, even ones
  ``fence_redfish``) for ``vigil fence``, and for Vigil itself with
  ``up --fencing``;
* one ``vigil agent`` per host namespace.

Modules: :mod:`.plan` (names and addresses), :mod:`.netns` (namespaces,
links, sockets opened inside a namespace, timed link flips),
:mod:`.state` (the state directory: JSON state file, pid files, logs),
:mod:`.bed` (up, status, down), :mod:`.bmc` and :mod:`.power` (the BMC
emulators and what their power switch does to a host), :mod:`.faults`
(injection and repair, recording T00), :mod:`.workload` and
:mod:`.probe` (the VNF's instance processes and the probe client),
:mod:`.scenario` (the ACT/STBY app on the testbed, for the demo and the
benchmarks), :mod:`.cli` (``vigil testbed``).
Every name starts with ``vgt-``, so ``vigil testbed down`` finds and
removes everything by that prefix, even after a crash.
"""
