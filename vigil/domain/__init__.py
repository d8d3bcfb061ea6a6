"""Pure types and rules of Vigil: resources, their states, events and errors.

Nothing here does I/O or imports a framework; every other layer builds on
these types. import-linter keeps it so (see ``.importlinter``).
"""
