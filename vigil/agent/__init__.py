"""The host agent (``vigil agent``)."""
