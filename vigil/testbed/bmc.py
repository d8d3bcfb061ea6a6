"""BMC emulators for the testbed's hosts: an IPMI BMC (pyghmi's) and a Redfish one (sushy-tools') per host.

Fencing is tested against real BMC protocols spoken by real fence agents,
so each host gets the two BMCs operators' fence devices talk to:

* IPMI 2.0 (RMCP+, ``fence_ipmilan --lanplus``): pyghmi's ``Bmc``, the
  emulator virtualbmc is built on, on ``address:ipmi_port``;
* Redfish (``fence_redfish``): sushy-tools' emulator (the one Ironic and
  Metal3 test against) on ``https://address:redfish_port``, with its basic
  authentication and, like a BMC out of the box, a self-signed certificate
  (fence devices set ``ssl_insecure``); the host's system is
  ``/redfish/v1/Systems/<host>``.

Both speak for one power switch per host. Its state is kept in
``<state_dir>/power/<host>`` (``on`` or ``off``) so a test or the testbed
can read what the BMC did, and, in the testbed, switching it really powers
the host: off stops the host's agent and workload and takes its links down
(:mod:`vigil.testbed.power`). sushy-tools' own fake driver applies a power
change after a random 1-11 s and keeps it to itself; the systems driver
here is that fake driver with its power read from and given to the switch,
at once, as a BMC whose chassis power relay answers in milliseconds.

Run as ``python -m vigil.testbed.bmc CONFIG`` (JSON, see :class:`BmcConfig`);
it prints ``ready`` once every BMC listens. Needs ``pip install
'vigil[testbed]'`` (pyghmi and sushy-tools).
"""

import argparse
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POWER_DIR = "power"
NAMESPACE = uuid.UUID("8f1d2b7e-6c0a-4d5e-9b3f-0a7c1e2d4f60")  # a host's system UUID is uuid5 of its name

PowerHook = Callable[[str, bool], None]  # (host, on): what powering a host does beyond recording it


@dataclass(frozen=True, slots=True)
class BmcSpec:
    host: str
    address: str
    ipmi_port: int
    redfish_port: int


@dataclass(frozen=True, slots=True)
class BmcConfig:
    """What the emulator process serves: a BMC pair per host, all with one login, and where power is kept.
    ``testbed_dir``: the testbed whose hosts the power switches (none: the state files only)."""

    state_dir: Path
    username: str
    password: str
    bmcs: list[BmcSpec] = field(default_factory=list)
    testbed_dir: Path | None = None

    @classmethod
    def read(cls, path: Path) -> "BmcConfig":
        raw = json.loads(path.read_text())
        return cls(
            state_dir=Path(raw["state_dir"]),
            username=raw["username"],
            password=raw["password"],
            bmcs=[BmcSpec(**b) for b in raw["bmcs"]],
            testbed_dir=Path(raw["testbed_dir"]) if raw.get("testbed_dir") else None,
        )

    def write(self, path: Path) -> None:
        body = {
            "state_dir": str(self.state_dir),
            "username": self.username,
            "password": self.password,
            "bmcs": [
                {"host": b.host, "address": b.address, "ipmi_port": b.ipmi_port, "redfish_port": b.redfish_port}
                for b in self.bmcs
            ],
            "testbed_dir": str(self.testbed_dir) if self.testbed_dir else None,
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the password: 0600 from the start
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(body))
        path.chmod(0o600)


def power_file(state_dir: Path, host: str) -> Path:
    return state_dir / POWER_DIR / host


def read_power(state_dir: Path, host: str) -> bool:
    """Whether ``host`` is powered on, as its BMC last set it (on, before any BMC touched it)."""
    try:
        return power_file(state_dir, host).read_text().strip() != "off"
    except FileNotFoundError:
        return True


class PowerSwitch:
    """The hosts' power, one lock for all: a BMC's change is recorded (atomically) and handed to ``hook``."""

    def __init__(self, state_dir: Path, hook: PowerHook | None = None) -> None:
        self._dir = state_dir / POWER_DIR
        self._dir.mkdir(parents=True, exist_ok=True)
        self._state_dir = state_dir
        self._hook = hook
        self._lock = threading.Lock()

    def is_on(self, host: str) -> bool:
        return read_power(self._state_dir, host)

    def set(self, host: str, on: bool) -> None:
        with self._lock:
            if self.is_on(host) == on:
                return
            if self._hook is not None:
                self._hook(host, on)
            fd, tmp = tempfile.mkstemp(dir=self._dir)
            with os.fdopen(fd, "w") as out:
                out.write("on" if on else "off")
            os.replace(tmp, self._dir / host)
            logging.getLogger("vigil.testbed.bmc").info("%s powered %s", host, "on" if on else "off")


def _ipmi_bmcs(config: BmcConfig, switch: PowerSwitch) -> list[Any]:
    from pyghmi.ipmi import bmc  # type: ignore[import-untyped]

    class HostBmc(bmc.Bmc):  # type: ignore[misc]
        """One host's IPMI BMC: chassis power through the switch."""

        def __init__(self, host: str, address: str, port: int) -> None:
            super().__init__({config.username: config.password}, port=port, address=address)
            self.host = host

        def get_power_state(self) -> str:
            return "on" if switch.is_on(self.host) else "off"

        def power_off(self) -> None:
            switch.set(self.host, False)

        def power_shutdown(self) -> None:
            switch.set(self.host, False)

        def power_on(self) -> None:
            switch.set(self.host, True)

        def power_reset(self) -> None:
            switch.set(self.host, False)
            switch.set(self.host, True)

        def power_cycle(self) -> None:
            self.power_reset()

    return [HostBmc(b.host, b.address, b.ipmi_port) for b in config.bmcs]


def _redfish_app(config: BmcConfig, switch: PowerSwitch, run_dir: Path) -> Any:
    """sushy-tools' Flask application, its systems being the hosts, their power the switch's."""
    import bcrypt
    from sushy_tools import error as sushy_error  # type: ignore[import-untyped]
    from sushy_tools.emulator import main as sushy  # type: ignore[import-untyped]
    from sushy_tools.emulator.resources.systems.fakedriver import FakeDriver  # type: ignore[import-untyped]

    class HostSystems(FakeDriver):  # type: ignore[misc]
        """sushy-tools' fake systems, powered through the switch at once."""

        def get_power_state(self, identity: str) -> str:
            return "On" if switch.is_on(self.name(identity)) else "Off"

        def set_power_state(self, identity: str, state: str) -> None:
            host = self.name(identity)
            if state in ("ForceOff", "GracefulShutdown"):
                switch.set(host, False)
            elif "Restart" in state or state == "PowerCycle":
                switch.set(host, False)
                switch.set(host, True)
            elif "On" in state:
                switch.set(host, True)
            else:
                raise sushy_error.NotSupportedError(f"Power state {state} is not supported")

    auth_file = run_dir / "redfish.htpasswd"
    digest = bcrypt.hashpw(config.password.encode(), bcrypt.gensalt(rounds=4)).decode()
    auth_file.write_text(f"{config.username}:{digest}\n")
    systems = [
        {"uuid": str(uuid.uuid5(NAMESPACE, b.host)), "name": b.host, "power_state": "On", "nics": []}
        for b in config.bmcs
    ]
    app = sushy.app
    app.configure(
        extra_config={
            "SUSHY_EMULATOR_AUTH_FILE": str(auth_file),
            "SUSHY_EMULATOR_FAKE_DRIVER": True,
            "SUSHY_EMULATOR_FAKE_SYSTEMS": systems,
            "SUSHY_EMULATOR_FEATURE_SET": "minimum",
        }
    )
    driver = HostSystems.initialize(app.config, app.logger)()

    class TestbedRedfish(type(app)):  # type: ignore[misc]
        """sushy-tools gives no way to name a driver class: its application, with the systems above."""

        @property
        def systems(self) -> Any:
            return driver

    app.__class__ = TestbedRedfish
    return app


def _self_signed(run_dir: Path, names: list[str]) -> tuple[str, str]:
    """A certificate for the BMCs' addresses, as a BMC makes itself: signed by its own key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil testbed BMC")])
    now = datetime.datetime.now(datetime.UTC)
    alt = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(n)) for n in sorted(set(names))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(alt, critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = run_dir / "redfish.crt", run_dir / "redfish.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    return str(cert_file), str(key_file)


def serve(config: BmcConfig, hook: PowerHook | None, ready: Callable[[], None]) -> None:
    """Serve every BMC until the process is stopped."""
    from pyghmi.ipmi import bmc
    from werkzeug.serving import make_server

    switch = PowerSwitch(config.state_dir, hook)
    run_dir = config.state_dir / "bmc"
    run_dir.mkdir(parents=True, exist_ok=True)
    _ipmi_bmcs(config, switch)
    app = _redfish_app(config, switch, run_dir)
    tls = _self_signed(run_dir, [b.address for b in config.bmcs])
    for spec in config.bmcs:
        server = make_server(spec.address, spec.redfish_port, app, threaded=True, ssl_context=tls)
        threading.Thread(target=server.serve_forever, name=f"redfish-{spec.host}", daemon=True).start()
    ready()
    bmc.Bmc.listen()  # pyghmi's one loop serves every IPMI BMC made above


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def loopback_bmcs(directory: Path, hosts: Sequence[str], username: str, password: str) -> Iterator[BmcConfig]:
    """BMC emulators for ``hosts`` on loopback ports, in a process of their own (power kept under
    ``directory/bmc``, no host switched), stopped on exit: for the demos and tests without a testbed."""
    specs = [BmcSpec(h, "127.0.0.1", _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)) for h in hosts]
    config = BmcConfig(state_dir=directory / "bmc", username=username, password=password, bmcs=specs)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    config_file = directory / "bmc.json"
    config.write(config_file)
    log_file = directory / "bmc.log"
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vigil.testbed.bmc", str(config_file)], stdout=subprocess.PIPE, stderr=log, text=True
        )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the BMC emulators did not start: {log_file.read_text()[-2000:]}")
        yield config
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def device_settings(spec: BmcSpec, agent: str, username: str, **secret: object) -> dict[str, object]:
    """Vigil's ``fencing.devices`` entry for ``spec``'s host through ``agent`` (``fence_ipmilan`` or
    ``fence_redfish``); ``secret`` is ``secrets={"password": ...}`` or ``secret_files={"password": ...}``."""
    options: dict[str, str] = {"ip": spec.address, "username": username}
    if agent == "fence_ipmilan":
        options.update(ipport=str(spec.ipmi_port), lanplus="1")
    else:
        options.update(ipport=str(spec.redfish_port), ssl_insecure="1", systems_uri=f"/redfish/v1/Systems/{spec.host}")
    return {"agent": agent, "options": options, **secret}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vigil.testbed.bmc", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    config = BmcConfig.read(args.config)
    hook: PowerHook | None = None
    if config.testbed_dir is not None:
        from vigil.testbed.power import host_power_hook

        hook = host_power_hook(config.testbed_dir)

    def ready() -> None:
        print("ready", flush=True)

    serve(config, hook, ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
