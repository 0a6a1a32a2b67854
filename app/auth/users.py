"""The user directory: who may log in, with passwords checked by argon2id.

Users come from a file of `username:argon2-hash` lines (a mounted Secret) and, for load
tests, `user-0001`..`user-N` sharing one configured password. There is no built-in account.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

USERNAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_LOADTEST_USER = re.compile(r"user-(\d{4,6})")
# OWASP's argon2id minimum (19 MiB, 2 passes): ~15 ms per check here, so logins stay cheap
# enough for load tests while brute force stays expensive.
ARGON2_MEMORY_KIB = 19 * 1024
hasher = PasswordHasher(time_cost=2, memory_cost=ARGON2_MEMORY_KIB, parallelism=1)


def loadtest_username(n: int) -> str:
    return f"user-{n:04d}"


class UserDirectory:
    def __init__(
        self,
        hashes: dict[str, str],
        *,
        loadtest_users: int = 0,
        loadtest_password: str | None = None,
        concurrent_checks: int = 2,
    ) -> None:
        self._hashes = hashes
        # Each check holds 19 MiB while it runs: a burst of logins (a load test starting, a
        # password spray) must queue, not add up past the container's memory limit. Threads of
        # their own, few: glibc keeps each thread's freed 19 MiB in that thread's arena, so
        # checks spread over a general pool's 40 threads grew a worker by ~120 MiB for good
        # (an OOM kill under a 384 Mi limit on a real cluster).
        self._checks = ThreadPoolExecutor(concurrent_checks, thread_name_prefix="password")
        self._loadtest_users = loadtest_users
        self._loadtest_hash = hasher.hash(loadtest_password) if loadtest_password else None
        # Checked for unknown names too, so timing does not reveal which names exist.
        self._decoy_hash = hasher.hash("decoy password for unknown users")

    @classmethod
    def from_file(
        cls,
        path: str | None,
        *,
        loadtest_users: int = 0,
        loadtest_password: str | None = None,
        concurrent_checks: int = 2,
    ) -> UserDirectory:
        hashes: dict[str, str] = {}
        if path:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.startswith("#"):
                    name, _, encoded = line.strip().partition(":")
                    hashes[name] = encoded
        return cls(
            hashes,
            loadtest_users=loadtest_users,
            loadtest_password=loadtest_password,
            concurrent_checks=concurrent_checks,
        )

    def _hash_of(self, username: str) -> str | None:
        if username in self._hashes:
            return self._hashes[username]
        match = _LOADTEST_USER.fullmatch(username)
        if not (match and self._loadtest_hash):
            return None
        number = int(match[1])
        # Exactly the canonical spelling: user-0001, not user-00001.
        in_range = 1 <= number <= self._loadtest_users
        return self._loadtest_hash if in_range and username == loadtest_username(number) else None

    async def verify(self, username: str, password: str) -> bool:
        encoded = self._hash_of(username)
        loop = asyncio.get_running_loop()
        matches = await loop.run_in_executor(
            self._checks, _check, encoded or self._decoy_hash, password
        )
        return matches and encoded is not None


def _check(encoded: str, password: str) -> bool:
    try:
        return hasher.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False
