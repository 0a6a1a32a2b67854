"""Redis memory per session: 100k sessions of a typical payload (a login and a 5-item cart)
in this project's layout (a hash per session, plus the per-user index entry) against
starsessions' (one JSON string per session), on a fresh redis-server each.

    python -m benchmarks.memory_bench --sessions 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis

from app.sessions import (
    CommitRequest,
    Limits,
    RedisSessionStore,
    new_session_id,
    store_key_of,
)
from harness.processes import RedisServer

BATCH = 100
PAYLOAD: dict[str, Any] = {
    "@user": "user-0042",
    "login_at": 1795432404,
    "cart": {f"sku-{i}": i + 1 for i in range(5)},
}


async def ours(url: str, sessions: int, with_index: bool) -> None:
    limits = Limits(idle_ms=1_800_000, lifetime_ms=43_200_000, max_bytes=16384)
    store = RedisSessionStore(
        Redis.from_url(url), limits, wait_replicas=0, wait_timeout_ms=100, deadline=10.0
    )
    expires = int(time.time() * 1000) + limits.lifetime_ms
    encoded = {name: (0, orjson.dumps(value)) for name, value in PAYLOAD.items()}

    async def one(n: int) -> None:
        key = store_key_of(new_session_id())
        if with_index:  # as a login does: every user has ~1 session here
            await store.index_add(f"user-{n:06d}", key, expires, cap=100)
        await store.commit(key, CommitRequest(secrets.token_hex(8), create=True, sets=encoded))

    for start in range(0, sessions, BATCH):
        await asyncio.gather(*(one(n) for n in range(start, min(start + BATCH, sessions))))
    await store.close()


async def starsessions(url: str, sessions: int) -> None:
    from starsessions import JsonSerializer
    from starsessions.stores.redis import RedisStore

    store = RedisStore(url)
    data = JsonSerializer().serialize({k: v for k, v in PAYLOAD.items()})

    async def one() -> None:
        await store.write(secrets.token_hex(32), data, lifetime=43200, ttl=1800)

    for start in range(0, sessions, BATCH):
        await asyncio.gather(*(one() for _ in range(min(BATCH, sessions - start))))


def measure(sessions: int, fill: Any) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sf-mem-") as tmp:
        server = RedisServer(Path(tmp))
        try:
            before = server.client.info("memory")["used_memory"]
            asyncio.run(fill(server.url))
            info = server.client.info("memory")
            keys = server.client.dbsize()
            return {
                "bytes_per_session": round((info["used_memory"] - before) / sessions, 1),
                "keys": keys,
                "used_memory_mb": round(info["used_memory"] / 2**20, 1),
            }
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.json"))
    args = parser.parse_args()
    n = args.sessions
    report = {
        "sessions": n,
        "payload": PAYLOAD,
        "ours (session hash)": measure(n, lambda url: ours(url, n, with_index=False)),
        "ours (session hash + user index entry)": measure(n, lambda url: ours(url, n, True)),
        "starsessions (JSON string)": measure(n, lambda url: starsessions(url, n)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
