"""Token authentication and role checks.

A token file maps each token to a project and a role::

    3f1c...e9: {project: admin, role: admin}
    a77b...01: {project: vnf-a, role: member}
    c02d...5f: {project: monitoring, role: monitor}

Roles: ``admin`` sees and does everything; ``member`` sees only its own
project's resources (another project's are 404, as if they did not exist);
``monitor`` may only report events. Tokens are compared by their SHA-256
digest, so lookup time does not depend on how much of a guess was right.
``vigil serve`` writes an admin token on first start (``ensure_admin_token``).
"""

import hashlib
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    MONITOR = "monitor"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the project the token belongs to, and its role."""

    project: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def sees(self, project: str | None) -> bool:
        """Whether a resource of ``project`` (None: infrastructure) is visible."""
        return self.is_admin or (project is not None and project == self.project)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str
    role: Role


class TokenFileError(Exception):
    """The token file cannot be read or is malformed."""


class TokenRegistry:
    """Tokens by digest."""

    def __init__(self, tokens: dict[str, Principal] | None = None) -> None:
        self._by_digest = {_digest(t): p for t, p in (tokens or {}).items()}

    @classmethod
    def load(cls, path: Path) -> "TokenRegistry":
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise TokenFileError(f"cannot read token file {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise TokenFileError(f"token file {path} must map tokens to {{project, role}}")
        tokens = {}
        for token, entry in raw.items():
            try:
                parsed = _Entry.model_validate(entry)
            except ValidationError as exc:
                raise TokenFileError(f"token file {path}, entry {str(token)[:6]}…: {exc.errors()[0]['msg']}") from exc
            tokens[str(token)] = Principal(parsed.project, parsed.role)
        return cls(tokens)

    def authenticate(self, token: str) -> Principal | None:
        return self._by_digest.get(_digest(token))

    def __len__(self) -> int:
        return len(self._by_digest)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_hex(24)


def add_token(path: Path, project: str, role: Role) -> str:
    """Append a new token to the file (created 0600 if absent); return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token()
    line = yaml.safe_dump({token: {"project": project, "role": role.value}}, default_flow_style=None)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(line)
    return token


def ensure_admin_token(path: Path) -> str | None:
    """On first start, create the token file with one admin token and return
    the token; if the file exists, leave it and return None."""
    if path.exists():
        return None
    token = add_token(path, "admin", Role.ADMIN)
    (path.parent / "admin-token").write_text(token + "\n")
    os.chmod(path.parent / "admin-token", 0o600)
    return token
