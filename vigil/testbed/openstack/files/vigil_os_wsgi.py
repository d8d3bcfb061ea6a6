"""WSGI entry points of the stack's APIs for gunicorn (``vigil_os_wsgi:app("nova")``).

Nova 34, Neutron 29 and Keystone 30 ship no API server of their own, only
WSGI modules meant for uwsgi, and they parse ``sys.argv`` when imported (uwsgi
passes ``--pyargv``). Under gunicorn ``sys.argv`` holds gunicorn's own
options, which oslo.config refuses ("unrecognized arguments"), so each app is
imported here after ``sys.argv`` is set to the program name alone. The config
files come from ``OS_*_CONFIG_DIR`` in the environment. This file runs in the
stack's virtual environment; Vigil never imports it.
"""

import importlib
import sys
from typing import Any

APPS = {
    "keystone": ("keystone-wsgi-public", "keystone.wsgi.api"),
    "nova": ("nova-api-os-compute", "nova.wsgi.osapi_compute"),
    "placement": ("placement-api", "placement.wsgi.api"),
    "neutron": ("neutron-api", "neutron.wsgi.api"),
}


def app(name: str) -> Any:
    """Gunicorn's application factory: the WSGI callable of service ``name``."""
    prog, module = APPS[name]
    sys.argv = [prog]
    return importlib.import_module(module).application
