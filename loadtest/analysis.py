"""The figures of a recorded run (`run_state.RunState.record()` or a saved run file): totals,
latency, error rate against its threshold, requests per replica, a per-second timeline, and per
chaos event how long writes and reads stalled, when errors were back to normal and the worst
latency meanwhile. Pure computation on per-request records, no Locust: tests feed it recorded
runs. docs/loadtest.md ("Reading the report") explains the figures to their readers.

Definitions (requests count by when they started, unless said otherwise):
- normal: the run before the first chaos action, after a warm-up. A second is *erroneous* when
  requests started in it and more of them failed than `NORMAL_FLOOR` (or twice the normal
  failed share, if that is higher). Seconds in which no request started are not erroneous:
  a standstill shows as a stall.
- an event's window runs from the start of its action to the start of the next one (or the
  end of the load). Errors are *back to normal* after the last erroneous second of the window
  (counted in whole seconds from the action's start), if at least `SETTLE_S` seconds of the
  window follow it; if not, they were not back to normal before the window ended. Requests
  still in flight when the window ends are left to the next action.
- a *stall* of writes (reads): the longest time within the window during which no write
  (read) completed successfully (requests count by when they ended), if it is at least
  `STALL_FLOOR_S` and twice the longest such gap in normal running; shorter gaps are noise.
- *recovered after*: the later of errors back to normal and the end of either stall, from the
  action's start. The *impact* runs from the action's start to the latest of that and the
  action's own end (at least 1 s); failed requests are counted among those started in it,
  the worst latency among those in flight during it.
Latency percentiles are nearest-rank over raw request latencies (ms).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import scaling
from .consistency import FATAL, NON_FATAL

WARMUP_S = 10.0  # the first seconds (logins, connection set-up) are not "normal"
NORMAL_FLOOR = 0.01  # a second with at most 1% failed requests is normal
SETTLE_S = 5  # normal seconds in a row that mean errors are over
# A gap between successful completions is a stall when it is at least this long, and at least
# twice the longest gap seen in normal running (load runs differ in rate).
STALL_FLOOR_S = 0.5
MAX_REQUEST_S = 30.0  # no request lasts longer (Locust's timeout is 10 s)


@dataclass(frozen=True, slots=True)
class Request:
    start: float  # seconds since the run started
    latency_ms: float
    read: bool
    ok: bool
    status: int
    replica: str
    name: str

    @property
    def end(self) -> float:
        return self.start + self.latency_ms / 1000


def requests_of(record: dict[str, Any]) -> list[Request]:
    columns = record["requests"]["columns"]
    at = {name: columns.index(name) for name in columns}
    return sorted(
        (
            Request(
                float(row[at["start_s"]]),
                float(row[at["latency_ms"]]),
                row[at["kind"]] == "r",
                bool(row[at["ok"]]),
                int(row[at["status"]]),
                str(row[at["replica"]]),
                str(row[at["name"]]),
            )
            for row in record["requests"]["rows"]
        ),
        key=lambda r: r.start,
    )


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def latency(requests: Sequence[Request]) -> dict[str, float | None]:
    values = sorted(r.latency_ms for r in requests)
    figures = {
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": values[-1] if values else None,
    }
    return {k: None if v is None else round(v, 1) for k, v in figures.items()}


class _Index:
    """Requests by start time, and successful completions of reads and writes by end time."""

    def __init__(self, requests: list[Request]) -> None:
        self.requests = requests
        self.starts = [r.start for r in requests]
        self.ok_ends = {
            kind: sorted(r.end for r in requests if r.ok and r.read == (kind == "reads"))
            for kind in ("reads", "writes")
        }

    def started(self, begin: float, end: float) -> list[Request]:
        lo = bisect.bisect_left(self.starts, begin)
        return self.requests[lo : bisect.bisect_left(self.starts, end)]

    def in_flight(self, begin: float, end: float) -> list[Request]:
        return [r for r in self.started(begin - MAX_REQUEST_S, end) if r.end > begin]

    def longest_gap(self, kind: str, begin: float, end: float) -> dict[str, float]:
        """The longest time within [begin, end) with no successful completion of `kind`."""
        ends = self.ok_ends[kind]
        i = bisect.bisect_right(ends, begin)
        j = bisect.bisect_left(ends, end)
        points = [ends[i - 1] if i else -math.inf, *ends[i:j], ends[j] if j < len(ends) else end]
        best = {"seconds": 0.0, "from_s": begin, "to_s": begin}
        for a, b in itertools.pairwise(points):
            a, b = max(a, begin), min(b, end)
            if b - a > best["seconds"]:
                best = {"seconds": b - a, "from_s": a, "to_s": b}
        return {k: round(v, 3) for k, v in best.items()}


def _erroneous(requests: Sequence[Request], normal_share: float) -> bool:
    failed = sum(not r.ok for r in requests)
    return bool(requests) and failed / len(requests) > normal_share


def event_figures(
    event: dict[str, Any], window_end: float, index: _Index, normal: dict[str, Any]
) -> dict[str, Any]:
    start = float(event["start_s"])
    normal_share = normal["normal_error_share"]
    seconds = max(1, math.ceil(window_end - start))
    # A request still in flight when the next action began is that action's to answer for
    # (in a demo run, the one failure "after" an app kill was a login the master kill cut off).
    erroneous = [
        _erroneous(
            [
                r
                for r in index.started(start + k, min(start + k + 1, window_end))
                if r.end <= window_end
            ],
            normal_share,
        )
        for k in range(seconds)
    ]
    last = max((k for k, bad in enumerate(erroneous) if bad), default=None)
    if last is None:
        errors_after: float | None = 0.0
    elif seconds - (last + 1) >= SETTLE_S:
        errors_after = float(last + 1)
    else:
        errors_after = None  # still erroneous when the next action (or the run's end) came
    stalls = {}
    for kind in ("writes", "reads"):
        gap = index.longest_gap(kind, start, window_end)
        floor = max(STALL_FLOOR_S, 2 * normal[f"longest_{kind[:-1]}_gap_s"])
        stalls[kind] = {**gap, "stall": gap["seconds"] >= floor, "floor_s": round(floor, 3)}
    if errors_after is None:
        recovered_after = None
    else:
        stall_ends = [s["to_s"] - start for s in stalls.values() if s["stall"]]
        recovered_after = round(max([errors_after, *stall_ends]), 3)
    recovered_at = window_end if recovered_after is None else start + recovered_after
    impact_end = max(float(event["end_s"]), recovered_at, start + 1.0)
    in_flight = index.in_flight(start, impact_end)
    worst = max(in_flight, key=lambda r: r.latency_ms, default=None)
    started = index.started(start, impact_end)
    failures = [r for r in index.started(start, window_end) if not r.ok]
    return {
        "window_end_s": round(window_end, 3),
        "write_stall": stalls["writes"],
        "read_stall": stalls["reads"],
        "errors_normal_after_s": errors_after,
        "recovered_after_s": recovered_after,
        "impact_end_s": round(impact_end, 3),
        "requests_in_impact": len(started),
        "failed_in_impact": sum(not r.ok for r in started),
        "failed_in_window": len(failures),
        "failures_from_s": round(failures[0].start, 3) if failures else None,
        "failures_to_s": round(failures[-1].start, 3) if failures else None,
        "latency_in_impact_ms": latency(in_flight),
        "worst_request": None
        if worst is None
        else {
            "name": worst.name,
            "kind": "read" if worst.read else "write",
            "start_s": round(worst.start, 3),
            "latency_ms": worst.latency_ms,
            "status": worst.status,
        },
    }


def baseline(index: _Index, first_event: float | None, load_end: float) -> dict[str, Any]:
    end = first_event if first_event is not None else load_end
    begin = min(WARMUP_S, end / 2)
    requests = index.started(begin, end)
    failed = sum(not r.ok for r in requests)
    share = failed / len(requests) if requests else 0.0
    return {
        "from_s": round(begin, 3),
        "to_s": round(end, 3),
        "requests": len(requests),
        "requests_per_s": round(len(requests) / (end - begin), 1) if end > begin else 0.0,
        "failed_share": round(share, 5),
        "normal_error_share": round(max(NORMAL_FLOOR, 2 * share), 5),
        "latency_ms": latency(requests),
        "longest_write_gap_s": index.longest_gap("writes", begin, end)["seconds"],
        "longest_read_gap_s": index.longest_gap("reads", begin, end)["seconds"],
    }


def timeline(
    requests: list[Request], anomalies: list[dict[str, Any]], seconds: int
) -> dict[str, Any]:
    """Per second of the run, by request start: successful and failed requests, p50/p99
    latency (ms), answered requests per replica; anomalies per second by class."""
    by_second: dict[int, list[Request]] = defaultdict(list)
    for r in requests:
        by_second[int(r.start)].append(r)
    replicas = sorted({r.replica for r in requests if r.replica})
    out: dict[str, Any] = {"t": list(range(seconds)), "ok": [], "failed": []}
    out.update(p50_ms=[], p99_ms=[], per_replica={name: [] for name in replicas})
    for s in range(seconds):
        bucket = by_second.get(s, [])
        stats = latency(bucket)
        out["ok"].append(sum(r.ok for r in bucket))
        out["failed"].append(len(bucket) - out["ok"][-1])
        out["p50_ms"].append(stats["p50"])
        out["p99_ms"].append(stats["p99"])
        served = Counter(r.replica for r in bucket)
        for name in replicas:
            out["per_replica"][name].append(served.get(name, 0))
    kinds: dict[int, Counter[str]] = defaultdict(Counter)
    for a in anomalies:
        kinds[int(a["t"])][a["kind"]] += 1
    out["anomalies"] = [{"t": t, "kinds": dict(c)} for t, c in sorted(kinds.items())]
    return out


def per_replica(requests: list[Request]) -> list[dict[str, Any]]:
    groups: dict[str, list[Request]] = defaultdict(list)
    for r in requests:
        groups[r.replica or "(no answer)"].append(r)
    return [
        {
            "replica": name,
            "requests": len(group),
            "share": round(len(group) / len(requests), 4),
            "failed": sum(not r.ok for r in group),
            "latency_ms": latency(group),
        }
        for name, group in sorted(groups.items())
    ]


def warnings(events: list[dict[str, Any]]) -> list[str]:
    """What a game day's reader must not miss, though it does not fail the run by itself."""
    found = []
    for number, event in enumerate(events, 1):
        if event["errors_normal_after_s"] is None:
            found.append(
                f"event {number} ({event['action']}): errors not back to normal within "
                f"{event['window_end_s'] - event['start_s']:.1f} s, before "
                + ("the end of the run" if number == len(events) else "the next action")
            )
    return found


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """Everything the report states, as plain data (summary.json)."""
    params = record["params"]
    requests = requests_of(record)
    index = _Index(requests)
    duration = float(record["duration_s"])
    load_end = max((r.start for r in requests), default=0.0)
    chaos = sorted(record["chaos"], key=lambda e: e["start_s"])
    normal = baseline(index, chaos[0]["start_s"] if chaos else None, load_end)
    events = []
    for i, event in enumerate(chaos):
        window_end = chaos[i + 1]["start_s"] if i + 1 < len(chaos) else load_end
        figures = event_figures(event, max(window_end, event["start_s"]), index, normal)
        events.append({**event, **figures})
    kinds = Counter(a["kind"] for a in record["anomalies"])
    fatal = sum(kinds[k] for k in FATAL)
    failed = sum(not r.ok for r in requests)
    plain_rate = (failed - fatal) / len(requests) if requests else 1.0
    max_error_rate = float(params.get("max_error_rate", 0.05))
    reasons = []
    if not requests:
        reasons.append("no requests were made")
    if fatal:
        reasons.append(f"{fatal} session anomalies ({', '.join(k for k in FATAL if kinds[k])})")
    if plain_rate > max_error_rate:
        reasons.append(f"plain error rate {plain_rate:.2%} over the {max_error_rate:.2%} threshold")
    failed_chaos = [e for e in chaos if not e["ok"]]
    if failed_chaos:
        reasons.append(f"{len(failed_chaos)} chaos actions could not be carried out")
    rollout_failures = sum(e["failed_in_window"] for e in events if e["action"] == "restart_app")
    if params.get("chaos_plan") == "rollouts" and rollout_failures:
        reasons.append(f"{rollout_failures} requests failed during the app's rolling restarts")
    samples = record.get("replicas", [])
    replicas = scaling.figures(samples, requests)
    if params.get("chaos_plan") == "scale":
        reasons += scaling.reasons(replicas)
    seconds = max(1, math.ceil(duration))
    line = timeline(requests, record["anomalies"], seconds)
    line["app_replicas"] = {
        key: scaling.per_second(samples, key, seconds) for key in ("desired", "ready")
    }
    return {
        "params": params,
        "started_at": record["started_at"],
        "target": params.get("target"),
        "users": params.get("users"),
        "duration_s": round(duration, 1),
        "requests": len(requests),
        "reads": sum(r.read for r in requests),
        "writes": sum(not r.read for r in requests),
        "failures": failed,
        "requests_per_s": round(len(requests) / duration, 1) if duration else 0.0,
        "latency_ms": latency(requests),
        "plain_error_rate": round(plain_rate, 5),
        "max_error_rate": max_error_rate,
        "logins": record["logins"],
        "hops": record["hops"],
        "replicas": per_replica(requests),
        "baseline": normal,
        "chaos_events": events,
        "failures_by_class": {k: kinds.get(k, 0) for k in (*FATAL, *NON_FATAL)},
        "sessions_lost": kinds.get("session_lost", 0),
        "session_anomalies": fatal,
        "fatal_anomalies": [a for a in record["anomalies"] if a["kind"] in FATAL],
        "first_anomalies": record["anomalies"][:50],
        "scaling": replicas,
        "timeline": line,
        "definitions": {
            "warmup_s": WARMUP_S,
            "normal_error_floor": NORMAL_FLOOR,
            "settle_s": SETTLE_S,
            "stall_floor_s": STALL_FLOOR_S,
            "percentiles": "nearest rank over raw request latencies",
        },
        "verdict": {"pass": not reasons, "reasons": reasons, "warnings": warnings(events)},
    }
