"""Vigil: fault management and maintenance coordination for virtualized infrastructure.

An implementation of the OPNFV Doctor architecture. See README.md for the map
from Doctor's functional blocks (monitor, inspector, controller, notifier,
admin tool) to the packages below this one.
"""

__version__ = "0.1.0"
