"""Writes docs/benchmarks.md from the JSON results in benchmarks/results/ (made by `make bench`).

python -m benchmarks.render
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NAMES = {
    "none": "no session (ceiling)",
    "starlette": "Starlette SessionMiddleware (signed cookie)",
    "starsessions": "starsessions + Redis",
    "ours-memory": "sessionfleet, in-memory store",
    "ours-redis": "**sessionfleet, Redis**",
    "ours-app": "sessionfleet full app (Sentinel, replica-acknowledged commits, metrics, origin check)",
}


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def sessions_section(data: dict[str, Any]) -> str:
    setup = data["setup"]
    rows = []
    for variant, endpoints in data["table"].items():
        rw, read = endpoints["read+write"], endpoints["read"]
        cells = [NAMES.get(variant, variant)]
        for e in (rw, read):
            cells += [
                f"{e['rps']:.0f}",
                f"**{e['ratio_to_ceiling']:.2f}**",
                f"{e['p50_ms']:.2f} / {e['p99_ms']:.1f}",
                str(e["redis_commands_per_request"]),
            ]
        rows.append("| " + " | ".join(cells) + " |")
    ours, theirs = data["table"]["ours-redis"], data["table"]["starsessions"]
    return f"""## Session cost per request (`python -m benchmarks.sessions_bench`)

Identical FastAPI endpoints (`benchmarks/session_apps.py`): `POST /counter` reads and writes
the session, `GET /me` reads it. {setup["server"]}; {setup["load"]}; {setup["connections"]}
connections over {setup["sessions"]} sessions; {setup["rounds"]} interleaved rounds of
{setup["seconds"]} s; garbage collector in every app: {setup.get("gc", "CPython's defaults")}. req/s and latencies are medians over the rounds; **ratios are taken
within each round** (each variant against the ceiling, or starsessions, measured seconds
apart) and their median reported: this shared VM's speed drifts within tens of seconds,
which ratios of whole-run medians would mix in. Redis commands are the commands the app sent
per request (MONITOR, script internals not counted): the round trips.

| variant | read+write req/s | ratio | p50 / p99 ms | Redis cmds | read req/s | ratio | p50 / p99 ms | Redis cmds |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

sessionfleet (Redis) against starsessions, same pairing: **{_vs(ours, theirs, "read+write")}×**
on read+write, **{_vs(ours, theirs, "read")}×** on read.{_app_gap(data["table"])}
"""


def _app_gap(table: dict[str, Any]) -> str:
    """The production app against the cheapest session layer there is: a signed cookie."""
    app, cookie = table.get("ours-app"), table.get("starlette")
    if app is None or cookie is None:
        return ""
    gaps = [
        f"{app[e]['ratio_to_ceiling']:.2f} against {cookie[e]['ratio_to_ceiling']:.2f} on {e} "
        f"({app[e]['ratio_to_ceiling'] - cookie[e]['ratio_to_ceiling']:+.2f})"
        for e in ("read+write", "read")
    ]
    return (
        "\nThe full app against Starlette's signed cookie, ratios to the ceiling: "
        + "; ".join(gaps)
        + "."
    )


def _vs(ours: dict[str, Any], theirs: dict[str, Any], endpoint: str) -> str:
    paired = ours[endpoint].get("vs_starsessions")  # absent in results of older runs
    if paired is None:
        paired = ours[endpoint]["rps"] / theirs[endpoint]["rps"]
    return f"{paired:.2f}"


def cpu_section(data: dict[str, Any]) -> str:
    table = data["cpu_us_per_request"]
    setup = data["setup"]
    rows = [
        f"| {NAMES.get(v, v)} | {t['read+write']:.0f} | {t['read']:.0f} |" for v, t in table.items()
    ]
    return f"""## CPU per request, in-process (`python -m benchmarks.cpu_per_request`)

The ASGI app called directly by {setup["concurrency"]} concurrent tasks, pinned to one CPU (no
HTTP server, no load generator competing): process CPU time per request, median of
{setup["rounds"]} rounds of {setup["requests"]} requests. Redis's own CPU is not counted. Less
noisy than the throughput runs, and it isolates the session layer from the HTTP server.

| variant | read+write µs | read µs |
|---|---|---|
{chr(10).join(rows)}
"""


def memory_section(data: dict[str, Any]) -> str:
    rows = [
        f"| {name} | {value['bytes_per_session']:.0f} | {value['keys']} |"
        for name, value in data.items()
        if isinstance(value, dict) and "bytes_per_session" in value
    ]
    return f"""## Redis memory per session (`python -m benchmarks.memory_bench`)

{data["sessions"]:,} sessions holding a login and a 5-item cart (`{json.dumps(data["payload"])}`),
`used_memory` growth on a fresh redis-server, divided by the session count.

| layout | bytes per session | keys |
|---|---|---|
{chr(10).join(rows)}
"""


def scaling_section(data: dict[str, Any]) -> str:
    parts = ["## Scaling (`python -m benchmarks.scaling`)\n", data["setup"]["note"] + ".\n"]
    for title, runs in data.items():
        if title == "setup":
            continue
        parts.append(f"\n{title}:\n\n| | read+write req/s | read req/s |\n|---|---|---|")
        parts += [f"| {k} | {v['read+write']:.0f} | {v['read']:.0f} |" for k, v in runs.items()]
        parts.append("")
    return "\n".join(parts)


def failover_section(data: dict[str, Any]) -> str:
    s = data["summary"]
    windows = sorted(r["writes_back_s"] for r in data["rounds"])
    return f"""## Failover window (`make bench-failover`)

The loopback fleet (3 Redis + 3 Sentinels through the chart's bootstrap scripts, 3 app
replicas under gunicorn, HAProxy); 6 users keep writing; {s["kills"]} times: 5 new users log in,
the Redis master is SIGKILLed, the time until a write *started after the kill* is acknowledged
is measured, and the killed node is restarted (it rejoins as a replica).

| measure | result |
|---|---|
| master kills | {s["kills"]} |
| writes acknowledged again: median / max / min | **{s["writes_back_median_s"]:.2f} s** / {s["writes_back_max_s"]:.2f} s / {windows[0]:.2f} s |
| logins acknowledged during the run / lost | {s["acknowledged_logins"]} / **{s["acknowledged_logins_lost"]}** |
| background writes acknowledged / failed | {s["background_writes_acknowledged"]} / {s["background_writes_failed"]} |
| acknowledged writes lost | **{s["acknowledged_writes_lost"]}** |
| failovers Sentinel started on its own (not measured; round repeated) | {s.get("unplanned_failovers_seen", 0)} |
"""


def redis_cluster_section(data: dict[str, Any]) -> str:
    cost, fleet, windows = (
        data["redis_cost_per_operation"],
        data["fleet_req_per_s"],
        data["shard_failover_window_s"],
    )
    setup = data["setup"]
    cost_rows = [
        f"| {op} | {c['redis_cpu_us_per_op']:.1f} | {c['redis_commands_per_op']:.2f} | "
        f"{1e6 / c['redis_cpu_us_per_op']:,.0f} |"
        for op, c in cost.items()
    ]
    fleet_rows = [
        f"| {name} | {e['read+write']['rps']} | **{e['read+write']['ratio_to_baseline']:.2f}** | "
        f"{e['read']['rps']} | **{e['read']['ratio_to_baseline']:.2f}** |"
        for name, e in fleet.items()
    ]
    window_rows = [
        f"| {name} | **{w['median']:.2f} s** | {w['max']:.2f} s | {len(w['rounds'])} |"
        for name, w in windows.items()
        if isinstance(w, dict)
    ]
    # A read+write request is one update (load + durable commit), a read one load: one shard
    # carries at most 1 s of its master's CPU over what each costs it.
    rw, read = cost["update"]["redis_cpu_us_per_op"], cost["load"]["redis_cpu_us_per_op"]
    projection = " | ".join(
        f"{n}: {n * 1e6 / rw:,.0f} / {n * 1e6 / read:,.0f}" for n in (1, 3, 6, 12)
    )
    return f"""## Redis Cluster (`python -m benchmarks.redis_cluster_bench`)

{setup["cluster"]} (Redis {setup["redis"]}).

**What a session operation costs Redis** ({setup["ops_per_operation"]} of each through the
store, {setup["concurrency"]} in flight; the masters' CPU and commands, script internals and
`WAIT` included; login = durable index entry + durable session, update = load + durable
commit, logout = durable `DEL` + index removal):

| operation | Redis CPU µs | Redis commands | at most per shard master core (ops/s) |
|---|---|---|---|
{chr(10).join(cost_rows)}

**The fleet on 1 and 3 shards** ({setup["app"]}; wrk {setup["wrk"]}), against the same app on a
plain master + replica with `WAIT 1` (the baseline), ratios within each round:

| backend | read+write req/s | ratio | read req/s | ratio |
|---|---|---|---|---|
{chr(10).join(fleet_rows)}

On this machine's 2 CPUs the app processes, wrk and the Redis processes share everything:
adding shards cannot add throughput here. Reads gained a little on 3 shards; read+write lost
(not profiled: each worker's batch of commits now goes to three masters, so three `WAIT`s
and three writes where one did, and six redis-servers compete for the two CPUs instead of
two). What scales is each master's CPU per operation. **On paper**, from the costs above: N
shards carry at most N × (1 s / Redis CPU per request) — a read+write request is one update
(load + durable commit), a read one load — if the app replicas in front keep up (the full
app costs ~93 µs of CPU per read+write request, above: roughly one app core per 10,000
req/s) and keys spread evenly over slots (random session IDs; users by name):

| shards | read+write req/s at 100% of every master's core | read req/s |
|---|---|---|
{projection}

Plan for well under half of that: a master also replicates to its replicas, persists, and
takes the burst of retries after a failover.

**Failover window of a shard master** (SIGKILL under writes to that shard; time until a
commit started after the kill is acknowledged; the killed node restarted as soon as its
replica took over; cluster-node-timeout {windows["cluster_node_timeout_ms"]} ms, the chart's
default is 5,000 ms and the window grows with it):

| replicas per shard | median | max | kills |
|---|---|---|---|
{chr(10).join(window_rows)}
"""


def main() -> None:
    sections = [(ROOT / "benchmarks" / "notes.md").read_text()]
    for name, render in (
        ("sessions", sessions_section),
        ("cpu", cpu_section),
        ("memory", memory_section),
        ("scaling", scaling_section),
        ("failover", failover_section),
        ("redis_cluster", redis_cluster_section),
    ):
        data = load(name)
        if data is not None:
            sections.append(render(data))
    sections.append((ROOT / "benchmarks" / "findings.md").read_text())
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(sections))
    print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
