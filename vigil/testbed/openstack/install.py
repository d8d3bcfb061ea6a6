"""The stack's own virtual environment: Nova, Placement, Neutron and Keystone from PyPI.

Nova 34 alone brings ~150 packages (eventlet, oslo.*, an SQLAlchemy of its
own choosing); they must never meet Vigil's dependencies, so the stack gets
a venv of its own in its base directory. Installing takes ~45 s with a cold
pip cache, so ``up`` reuses a venv whose installed versions match the pins
(checked by asking the venv's interpreter, ~0.2 s) and installs only when
they do not. The ML2 ``bindall`` driver, shipped with Vigil as plain files
(``files/bindall``), is installed into it as a tiny distribution so that
Neutron finds it through its entry point.
"""

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vigil.testbed.openstack.layout import EXTRAS, PINS, Layout

FILES = Path(__file__).parent / "files"
BINDALL_DIST = "vigil-bindall"


class InstallError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class InstallResult:
    installed: bool  # False: an existing venv already matched the pins
    seconds: float


def _base_python() -> str:
    """A real interpreter to make the venv from (not Vigil's venv's, whose site we must not inherit)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return str(base)


def installed_versions(layout: Layout) -> dict[str, str | None]:
    """The versions the stack's venv has of the pinned distributions (None: missing)."""
    if not layout.python.exists():
        return {}
    names = [*PINS, BINDALL_DIST, "gunicorn", "PyMySQL"]
    code = (
        "import json, sys\nfrom importlib import metadata\nout = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = metadata.version(n)\n"
        "    except metadata.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([str(layout.python), "-c", code, *names], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {}
    versions: dict[str, str | None] = json.loads(done.stdout)
    return versions


def matches_pins(layout: Layout) -> bool:
    versions = installed_versions(layout)
    if not versions:
        return False
    pinned = all(versions.get(name) == version for name, version in PINS.items())
    return pinned and all(versions.get(name) for name in (BINDALL_DIST, "gunicorn", "PyMySQL"))


def _pip(layout: Layout, *args: str) -> None:
    command = [str(layout.python), "-m", "pip", "--disable-pip-version-check", "-q", *args]
    log = layout.log("install")
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise InstallError(f"pip failed ({' '.join(args[:3])} ...); the end of {log}:\n{tail}")


def ensure_venv(layout: Layout, *, force: bool = False) -> InstallResult:
    """Make the venv match the pins, installing only what is needed."""
    started = time.monotonic()
    if not force and matches_pins(layout):
        return InstallResult(installed=False, seconds=time.monotonic() - started)
    if importlib.util.find_spec("venv") is None:  # pragma: no cover - Debian's python3 without python3-venv
        raise InstallError("the 'venv' module is missing (apt-get install python3-venv)")
    layout.logs.mkdir(parents=True, exist_ok=True)
    if not layout.python.exists():
        done = subprocess.run(
            [_base_python(), "-m", "venv", str(layout.venv)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise InstallError(f"could not create {layout.venv}: {done.stderr.strip()}")
        _pip(layout, "install", "-U", "pip", "setuptools", "wheel")
    pins = [f"{name}=={version}" for name, version in PINS.items()]
    _pip(layout, "install", *pins, *EXTRAS)
    # Built from a copy: pip must not write build/ or egg-info into Vigil's source tree.
    build = layout.state / "bindall-src"
    shutil.rmtree(build, ignore_errors=True)
    shutil.copytree(FILES / "bindall", build)
    _pip(layout, "install", "--no-build-isolation", "--force-reinstall", "--no-deps", str(build))
    shutil.rmtree(build, ignore_errors=True)
    if not matches_pins(layout):
        raise InstallError(f"{layout.venv} does not match the pins after installing: {installed_versions(layout)}")
    return InstallResult(installed=True, seconds=time.monotonic() - started)


def remove_venv(layout: Layout) -> bool:
    if not layout.venv.exists():
        return False
    shutil.rmtree(layout.venv)
    return True
