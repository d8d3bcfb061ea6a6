"""The crash harness: ``vigil serve`` killed with SIGKILL at random and named points, and the
invariants of the fault path checked after every restart (:mod:`vigil.harness.crash`)."""
