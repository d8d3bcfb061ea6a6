"""The token file: API tokens kept as SHA-256 digests, written atomically, owner-only.

The file maps each token's digest to its project, role, name and creation
time::

    sha256:9f86d08...: {project: admin, role: admin, name: first start, created: '2026-12-07T06:40:00+00:00'}
    sha256:60303ae...: {project: vnf-a, role: member, name: vnfm-1, created: '2026-12-07T07:00:00+00:00'}

A token itself is shown once, when it is made (``vigil token create``), and
never stored: whoever reads the file learns no token. A file written by an
older Vigil, with tokens in plain text as keys, is still read, and
:func:`rewrite_hashed` turns it into digests (``vigil serve`` does at start).
An entry's *id* is the first 12 hex digits of its digest (``vigil token
list``, ``vigil token revoke ID``).

Every write goes to a temporary file created with mode 0600 in the same
directory, flushed, then renamed over the old one: the file is never seen
half written or readable by others, not even for a moment.
"""

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

DIGEST_PREFIX = "sha256:"
ID_LENGTH = 12


class TokenFileError(Exception):
    """The token file cannot be read or is malformed, or an id names no token."""


@dataclass(frozen=True, slots=True)
class TokenEntry:
    digest: str  # hex SHA-256 of the token
    project: str
    role: str
    name: str = ""
    created: str = ""

    @property
    def ident(self) -> str:
        return self.digest[:ID_LENGTH]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_hex(24)


def read_entries(path: Path) -> tuple[list[TokenEntry], bool]:
    """The file's entries, and whether any token was still in plain text."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise TokenFileError(f"token file {path} must map token digests to {{project, role}}")
    entries: list[TokenEntry] = []
    plain = False
    for key, value in raw.items():
        key = str(key)
        if not isinstance(value, dict) or not isinstance(value.get("project"), str) or "role" not in value:
            raise TokenFileError(f"token file {path}, entry {key[:14]}…: needs project and role")
        unknown = set(value) - {"project", "role", "name", "created"}
        if unknown:
            raise TokenFileError(f"token file {path}, entry {key[:14]}…: unknown fields {sorted(unknown)}")
        if key.startswith(DIGEST_PREFIX):
            hashed = key.removeprefix(DIGEST_PREFIX)
        else:
            hashed, plain = digest(key), True
        entries.append(
            TokenEntry(
                hashed, value["project"], str(value["role"]), str(value.get("name", "")), str(value.get("created", ""))
            )
        )
    return entries, plain


def write_entries(path: Path, entries: list[TokenEntry]) -> None:
    document: dict[str, Any] = {}
    for entry in entries:
        fields: dict[str, str] = {"project": str(entry.project), "role": str(entry.role)}
        if entry.name:
            fields["name"] = entry.name
        if entry.created:
            fields["created"] = entry.created
        document[f"{DIGEST_PREFIX}{entry.digest}"] = fields
    write_secret(path, yaml.safe_dump(document, default_flow_style=None, sort_keys=False))


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, the file owner-only (0600) from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def add_token(path: Path, project: str, role: str, name: str = "") -> str:
    """Make a new token, store its digest, and return it (the only time it is seen)."""
    token = new_token()
    entries = read_entries(path)[0] if path.exists() else []
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    entries.append(TokenEntry(digest(token), str(project), str(role), name, created))
    write_entries(path, entries)
    return token


def revoke_token(path: Path, ident: str) -> TokenEntry:
    """Remove the token whose id starts with ``ident`` (exactly one must)."""
    entries, _ = read_entries(path)
    matching = [e for e in entries if e.digest.startswith(ident.lower())] if ident else []
    if len(matching) != 1:
        found = "no token" if not matching else f"{len(matching)} tokens"
        raise TokenFileError(f"{found} with an id starting {ident!r} in {path}")
    write_entries(path, [e for e in entries if e is not matching[0]])
    return matching[0]


def rewrite_hashed(path: Path) -> bool:
    """Replace tokens kept in plain text by their digests; True if the file changed."""
    entries, plain = read_entries(path)
    if plain:
        write_entries(path, entries)
    return plain
