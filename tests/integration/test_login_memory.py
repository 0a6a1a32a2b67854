"""Bursts of logins queue their password checks on a few threads: memory stays bounded (each
argon2 check holds 19 MiB, and glibc keeps it in the arena of the thread that ran it: on a real
cluster, bursts of logins grew each worker past its share of a 384 Mi limit and it was
OOM-killed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from harness.processes import AppServer
from tests.conftest import LOAD_PASSWORD

pytestmark = pytest.mark.slow
MIB = 1024 * 1024


def _peak_rss(pid: int) -> int:
    """VmHWM: the most resident memory the process ever had, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


async def test_bursts_of_logins_do_not_add_up_password_memory(tmp_path: Path) -> None:
    env = {
        "SESSIONFLEET_LOADTEST_USERS": "30",
        "SESSIONFLEET_LOADTEST_PASSWORD": LOAD_PASSWORD,
        "SESSIONFLEET_PASSWORD_CHECKS_PER_WORKER": "2",
    }
    server = AppServer(tmp_path, env, name="memory")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await client.post("/login", json={"username": "user-0030", "password": LOAD_PASSWORD})
            before = _peak_rss(server.proc.pid)
            for _ in range(4):
                logins = [
                    client.post(
                        "/login", json={"username": f"user-{n:04d}", "password": LOAD_PASSWORD}
                    )
                    for n in range(1, 25)
                ]
                answers = await asyncio.gather(*logins)
                assert [a.status_code for a in answers] == [200] * 24
        grown = _peak_rss(server.proc.pid) - before
        # Two checks at a time: two 19 MiB buffers, and some room for the requests themselves.
        assert grown < 2 * 19 * MIB + 20 * MIB, f"peak grew {grown / MIB:.0f} MiB"
    finally:
        server.stop()
