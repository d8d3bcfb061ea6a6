"""Token authentication and role checks.

The token file (``vigil.api.tokens``) maps each token's SHA-256 digest to a
project and a role. Roles: ``admin`` sees and does everything; ``member``
sees only its own project's resources (another project's are 404, as if
they did not exist); ``monitor`` may only report events. Tokens are looked
up by their digest, so lookup time does not depend on how much of a guess
was right. ``vigil serve`` writes an admin token on first start
(``ensure_admin_token``) and re-reads the file when it changes or on SIGHUP,
so a token made or revoked takes effect without a restart.
"""

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from vigil.api.tokens import (
    TokenFileError,
    add_token,
    digest,
    new_token,
    read_entries,
    revoke_token,
    write_secret,
)


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


class TokenRegistry:
    """Tokens by digest; re-read from its file when it changes (:meth:`reload`)."""

    def __init__(self, tokens: dict[str, Principal] | None = None) -> None:
        self._by_digest = {digest(t): p for t, p in (tokens or {}).items()}
        self.path: Path | None = None
        self._stamp: tuple[float, int] | None = None

    @classmethod
    def load(cls, path: Path) -> "TokenRegistry":
        registry = cls()
        registry.path = path
        registry.reload()
        return registry

    def reload(self) -> bool:
        """Read the file again if it changed since the last read; True if it did.

        A file that cannot be read keeps the tokens as they were (and raises)."""
        if self.path is None:
            return False
        stat = self.path.stat()
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._stamp:
            return False
        entries, _ = read_entries(self.path)
        by_digest: dict[str, Principal] = {}
        for entry in entries:
            try:
                by_digest[entry.digest] = Principal(entry.project, Role(entry.role))
            except ValueError as exc:
                raise TokenFileError(
                    f"token file {self.path}, token {entry.ident}: unknown role {entry.role!r}"
                ) from exc
        self._by_digest, self._stamp = by_digest, stamp
        return True

    def authenticate(self, token: str) -> Principal | None:
        return self._by_digest.get(digest(token))

    def __len__(self) -> int:
        return len(self._by_digest)


def ensure_admin_token(path: Path) -> str | None:
    """On first start, create the token file with one admin token and return the
    token (also written, alone, to ``admin-token`` beside it, owner-only); if the
    file exists, leave it and return None."""
    if path.exists():
        return None
    token = add_token(path, "admin", Role.ADMIN, name="first start")
    write_secret(path.parent / "admin-token", token + "\n")
    return token


__all__ = [
    "Principal",
    "Role",
    "TokenFileError",
    "TokenRegistry",
    "add_token",
    "ensure_admin_token",
    "new_token",
    "revoke_token",
]
