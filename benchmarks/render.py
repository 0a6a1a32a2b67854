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


def main() -> None:
    sections = [(ROOT / "benchmarks" / "notes.md").read_text()]
    for name, render in (
        ("sessions", sessions_section),
        ("cpu", cpu_section),
        ("memory", memory_section),
        ("scaling", scaling_section),
        ("failover", failover_section),
    ):
        data = load(name)
        if data is not None:
            sections.append(render(data))
    sections.append((ROOT / "benchmarks" / "findings.md").read_text())
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(sections))
    print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
