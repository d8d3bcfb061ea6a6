"""A read-only stand-in for Glance's image API: one active raw image.

Nova's API needs an image service to boot a server (it reads the image and
``/v2/schemas/image``), but the fake virt driver never downloads anything, so
real Glance (its own database, store and workers) would only cost memory and
start-up time. This answers the few calls Nova makes, from the standard
library alone, so ``python -m vigil.testbed.openstack.glance`` runs with
Vigil's own interpreter. The schema must list Glance's base properties:
Nova builds its image model from them (without ``status`` it fails with
``KeyError: 'status'``). It trusts any token: it holds nothing secret.
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

IMAGE_ID = "5e1d0d0c-0f2b-4b4a-9d1e-000000000001"
IMAGE_NAME = "vigil-fake-image"

_BASE_PROPERTIES = [
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "disk_format",
    "container_format",
    "size",
    "virtual_size",
    "min_disk",
    "min_ram",
    "checksum",
    "owner",
    "tags",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "os_hash_algo",
    "os_hash_value",
]


def image(base_url: str) -> dict[str, Any]:
    return {
        "id": IMAGE_ID,
        "name": IMAGE_NAME,
        "status": "active",
        "visibility": "public",
        "protected": False,
        "os_hidden": False,
        "disk_format": "raw",
        "container_format": "bare",
        "size": 1024,
        "virtual_size": 1024,
        "min_disk": 0,
        "min_ram": 0,
        "checksum": "0" * 32,
        "owner": None,
        "tags": [],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "self": f"/v2/images/{IMAGE_ID}",
        "file": f"/v2/images/{IMAGE_ID}/file",
        "schema": "/v2/schemas/image",
        "os_hash_algo": "sha512",
        "os_hash_value": "0" * 128,
    }


def schema() -> dict[str, Any]:
    properties: dict[str, Any] = {name: {} for name in _BASE_PROPERTIES}
    properties["tags"] = {"type": "array", "items": {"type": "string"}}
    return {"name": "image", "properties": properties, "additionalProperties": {"type": "string"}, "links": []}


def versions(base_url: str) -> dict[str, Any]:
    return {
        "versions": [
            {"id": "v2.9", "status": "CURRENT", "links": [{"rel": "self", "href": f"{base_url}/v2/"}]},
        ]
    }


class _Handler(BaseHTTPRequestHandler):
    server_version = "vigil-glance-standin/1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: Nova polls it; errors still go to the log through send_error."""

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        base = f"http://{self.headers.get('Host', 'localhost')}"
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("", "/versions"):
            self._json(300 if path == "" else 200, versions(base))
        elif path == "/healthcheck":
            self._json(200, {"status": "ok"})
        elif path == "/v2/schemas/image":
            self._json(200, schema())
        elif path == "/v2/images":
            self._json(200, {"images": [image(base)], "schema": "/v2/schemas/images", "first": "/v2/images"})
        elif path == f"/v2/images/{IMAGE_ID}":
            self._json(200, image(base))
        elif path.startswith("/v2/images/"):
            self._json(404, {"message": "image not found"})
        else:
            self._json(404, {"message": "not found"})


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    """Bound and listening (port 0: any free one); ``serve_forever`` serves it."""
    return ThreadingHTTPServer((host, port), _Handler)


def serve(host: str, port: int) -> None:
    with make_server(host, port) as server:
        server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9292)
    # Unused here: it puts the stack's directory on the command line, where 'down' finds a lost process.
    parser.add_argument("--stack-dir", default="")
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
