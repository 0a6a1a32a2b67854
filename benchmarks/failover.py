"""Failover benchmark: N Redis master kills under steady load on the loopback fleet.

For each round: log in a batch of new users (acknowledged logins), SIGKILL the master, time
until a write started after the kill is acknowledged again, restart the killed node (it
rejoins as a replica through the bootstrap script), wait until Sentinel sees the fleet whole.
At the end every login acknowledged during the run must still work.

    python -m benchmarks.failover --rounds 20 --out benchmarks/results/failover.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from harness.ha_cluster import LOAD_PASSWORD, HACluster, wait_for_new_master
from harness.load import UserLog, drive, login, write_outage


async def run(
    rounds: int, users_per_round: int, background_users: int, workdir: Path | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sf-failover-") as tmp:
        cluster = HACluster(workdir or Path(tmp))
        try:
            cluster.start()
            return await _rounds(cluster, rounds, users_per_round, background_users)
        finally:
            cluster.stop()


async def _rounds(
    cluster: HACluster, rounds: int, users_per_round: int, background_users: int
) -> dict[str, Any]:
    next_user = 1

    async def new_users(n: int) -> list[tuple[httpx.AsyncClient, UserLog]]:
        nonlocal next_user
        batch = range(next_user, next_user + n)
        next_user += n
        return list(
            await asyncio.gather(
                *(login(cluster.url, f"user-{i:04d}", LOAD_PASSWORD) for i in batch)
            )
        )

    background = await new_users(background_users)
    logged_in: list[tuple[httpx.AsyncClient, UserLog]] = list(background)
    stop = asyncio.Event()
    load = asyncio.create_task(
        drive(background, stop, max_seconds=rounds * 60, max_requests_per_user=10**6, pause=0.02)
    )
    results = []
    unplanned = 0
    round_no = 0
    while round_no < rounds:
        old = await asyncio.to_thread(cluster.wait_healthy, 60)
        logged_in += await new_users(users_per_round)
        if cluster.master() is not old:
            # Sentinel failed over on its own (a >1 s stall on this busy 2-CPU machine): not a
            # measured kill; count it and start the round again once the fleet is whole.
            unplanned += 1
            print(f"unplanned failover before round {round_no + 1}", flush=True)
            continue
        round_no += 1
        killed_at = time.monotonic()
        cluster.kill_redis(old)
        new = await asyncio.to_thread(wait_for_new_master, cluster, old)
        promoted_after = time.monotonic() - killed_at
        while write_outage([log for _, log in background], killed_at) is None:
            if time.monotonic() - killed_at > 30:
                raise TimeoutError("writes did not resume within 30 s")
            await asyncio.sleep(0.05)
        outage = write_outage([log for _, log in background], killed_at)
        assert outage is not None
        cluster.start_redis(old)
        results.append(
            {
                "round": round_no,
                "old": old.port,
                "new": new.port,
                "promoted_s": round(promoted_after, 3),
                "writes_back_s": round(outage, 3),
            }
        )
        print(
            f"round {round_no:2d}: new master after {promoted_after:.2f}s, "
            f"writes acknowledged again after {outage:.2f}s",
            flush=True,
        )
    stop.set()
    await load
    me = await asyncio.gather(*(client.get("/me") for client, _ in logged_in))
    lost = [log.name for (_, log), r in zip(logged_in, me, strict=True) if r.status_code != 200]
    lost_writes = sum(len(log.lost_acknowledged_writes()) for _, log in background)
    failed = sum(len(log.failures("/counter")) for _, log in background)
    acked = sum(len(log.acked_counters()) for _, log in background)
    for client, _ in logged_in:
        await client.aclose()
    windows = [r["writes_back_s"] for r in results]
    return {
        "rounds": results,
        "summary": {
            "kills": rounds,
            "writes_back_median_s": round(statistics.median(windows), 3),
            "writes_back_max_s": round(max(windows), 3),
            "acknowledged_logins": len(logged_in),
            "acknowledged_logins_lost": len(lost),
            "background_writes_acknowledged": acked,
            "background_writes_failed": failed,
            "acknowledged_writes_lost": lost_writes,
            "unplanned_failovers_seen": unplanned,
        },
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--users-per-round", type=int, default=5)
    parser.add_argument("--background-users", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/failover.json"))
    parser.add_argument("--workdir", type=Path, help="keep process logs here")
    args = parser.parse_args()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(
        run(args.rounds, args.users_per_round, args.background_users, args.workdir)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
