"""What ``vigil testbed openstack`` writes and serves, without MariaDB, RabbitMQ or the stack's venv."""

import configparser
import stat
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vigil.testbed.openstack import config, glance
from vigil.testbed.openstack.config import Secrets
from vigil.testbed.openstack.layout import Layout
from vigil.testbed.openstack.stack import StackRecord

SECRETS = Secrets("admin-secret", "service-secret")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "stack")
    layout.prepare()
    for project in ("nova", "neutron"):  # what pip puts in the venv, copied by write_all
        paste = layout.venv / "etc" / project / "api-paste.ini"
        paste.parent.mkdir(parents=True)
        paste.write_text(f"[composite:{project}]\n")
    return layout


def read(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.read(path)
    return parser


def test_every_config_and_credential_file_is_owner_only_and_names_keystone(layout: Layout) -> None:
    config.write_all(layout, SECRETS, computes=3)
    config.write_credentials(layout, SECRETS)
    written = [p for p in layout.etc.rglob("*") if p.is_file()] + [layout.credentials_file, layout.openrc_file]
    assert len(written) >= 11
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    nova = read(layout.etc / "nova" / "nova.conf")
    assert nova.get("DEFAULT", "transport_url") == "rabbit://guest:guest@127.0.0.1:5672/vigil_os"
    assert nova.get("keystone_authtoken", "auth_url") == "http://127.0.0.1:5000/v3"
    assert nova.get("keystone_authtoken", "password") == "service-secret"
    assert nova.get("notifications", "notification_format") == "versioned"
    assert nova.get("DEFAULT", "compute_driver") == "fake.FakeDriverWithoutFakeNodes"
    assert [read(layout.compute_conf(i)).get("DEFAULT", "host") for i in (1, 2, 3)] == [
        "compute-1",
        "compute-2",
        "compute-3",
    ]
    assert read(layout.etc / "neutron" / "neutron.conf").get("DEFAULT", "auth_strategy") == "keystone"
    assert read(layout.etc / "placement" / "placement.conf").get("api", "auth_strategy") == "keystone"
    assert (
        read(layout.etc / "neutron" / "plugins" / "ml2" / "ml2_conf.ini").get("ml2", "mechanism_drivers") == "bindall"
    )
    assert "OS_PASSWORD=admin-secret" in layout.openrc_file.read_text()
    assert (layout.lib / "vigil_os_wsgi.py").is_file()


def test_the_stack_record_is_owner_only_and_round_trips(layout: Layout) -> None:
    record = StackRecord(3, "a", "b", set_up=True)
    record.save(layout)
    assert stat.S_IMODE(layout.stack_file.stat().st_mode) == 0o600
    assert StackRecord.load(layout) == record


def test_the_bindall_driver_is_registered_for_ml2() -> None:
    files = Path(config.__file__).parent / "files" / "bindall"
    project = tomllib.loads((files / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["neutron.ml2.mechanism_drivers"] == {
        "bindall": "vigil_bindall:BindAllDriver"
    }
    assert "class BindAllDriver" in (files / "vigil_bindall.py").read_text()


@pytest.fixture
def image_service() -> Iterator[str]:
    server = glance.make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_image_service_stand_in_answers_what_nova_asks(image_service: str) -> None:
    schema = httpx.get(f"{image_service}/v2/schemas/image").json()
    assert {"id", "status", "disk_format", "container_format", "min_disk", "min_ram"} <= set(schema["properties"])
    image = httpx.get(f"{image_service}/v2/images/{glance.IMAGE_ID}").json()
    assert image["status"] == "active"
    assert [i["id"] for i in httpx.get(f"{image_service}/v2/images").json()["images"]] == [glance.IMAGE_ID]
    assert httpx.get(f"{image_service}/v2/images/nope").status_code == 404
    assert httpx.get(f"{image_service}/").json()["versions"][0]["status"] == "CURRENT"
