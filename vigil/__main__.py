"""``python -m vigil`` is the ``vigil`` command."""

from vigil.cli import app

app(prog_name="vigil")
