"""Session IDs and the cookie that carries them.

An ID is 32 bytes from `secrets` (256 bits), base64url without padding: exactly 43 characters.
The store only ever sees `store_key_of(id)`, a SHA-256 digest, so a dump of the store holds no
usable cookie. Anything that is not a well-formed ID is ignored (the request is anonymous).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

ID_BYTES = 32
_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
# A cookie header longer than this is not parsed at all (browsers cap a cookie near 4 KiB).
MAX_COOKIE_HEADER = 8192


def new_session_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def is_well_formed(raw: str) -> bool:
    return _ID_SHAPE.fullmatch(raw) is not None


def store_key_of(session_id: str) -> str:
    """128-bit hex digest naming the session in the store (IDs have 256 bits of entropy,
    so a plain hash is safe: nothing to brute-force)."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    name: str = "sid"
    secure: bool = True

    @property
    def cookie_name(self) -> str:
        # __Host- makes the browser refuse the cookie unless Secure, Path=/ and host-only.
        return f"__Host-{self.name}" if self.secure else self.name

    def read(self, cookie_header: str | None) -> str | None:
        """The session ID in a Cookie header, or None if absent or not well formed."""
        if not cookie_header or len(cookie_header) > MAX_COOKIE_HEADER:
            return None
        prefix = self.cookie_name + "="
        for part in cookie_header.split(";"):
            part = part.strip()
            if part.startswith(prefix):
                value = part[len(prefix) :].strip('"')
                return value if is_well_formed(value) else None
        return None

    def set_header(self, session_id: str, max_age: int) -> str:
        return self._header(session_id, max_age)

    def clear_header(self) -> str:
        return self._header("", 0)

    def _header(self, value: str, max_age: int) -> str:
        flags = "; Secure" if self.secure else ""
        return (
            f"{self.cookie_name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{flags}"
        )
