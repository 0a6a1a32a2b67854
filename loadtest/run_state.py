"""Everything one load run records: every request, anomalies, hops, chaos events with their
start and end. One instance per Locust process (`RUN`); at the end it is saved as the run file
(`run.json.gz`) that the report is computed from (`loadtest/analysis.py`), so a report can be
rebuilt, and tested, from a recorded run.

Recording is one tuple append per request (Locust workers starve on a busy machine: keep the
per-request work light); rounding and naming happen once, when the run is saved.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .consistency import FATAL, Anomaly, Hops

FORMAT = 1
READ_METHODS = frozenset({"GET", "HEAD"})
# The columns of each request row in the run file.
REQUEST_COLUMNS = ("start_s", "latency_ms", "kind", "ok", "status", "replica", "name")


@dataclass
class RunState:
    started: float = field(default_factory=time.time)
    params: dict[str, Any] = field(default_factory=dict)
    # (start, epoch s; latency ms; is a read; ok; HTTP status or 0; X-Served-By; request name)
    requests: list[tuple[float, float, bool, bool, int, str, str]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    chaos: list[dict[str, Any]] = field(default_factory=list)
    hops: list[Hops] = field(default_factory=list)
    logins: int = 0
    # App replicas over time: (seconds into the run, desired, ready).
    replicas: list[tuple[float, int, int]] = field(default_factory=list)

    def second(self, at: float | None = None) -> int:
        return int((at or time.time()) - self.started)

    def request(
        self,
        method: str,
        name: str,
        start: float,
        latency_ms: float,
        ok: bool,
        status: int,
        replica: str,
    ) -> None:
        self.requests.append((start, latency_ms, method in READ_METHODS, ok, status, replica, name))

    def anomaly(self, user: str, request: str, anomaly: Anomaly) -> None:
        self.anomalies.append(
            {
                "t": round(time.time() - self.started, 3),
                "user": user,
                "request": request,
                "kind": anomaly.kind,
                "detail": anomaly.detail,
            }
        )

    def chaos_event(
        self, action: str, outcome: str, ok: bool, *, started: float, ended: float
    ) -> None:
        """`started`: when the action began to change the system (stamped before acting, so
        failures it causes never precede it); `ended`: when it returned. Epoch seconds."""
        self.chaos.append(
            {
                "action": action,
                "outcome": outcome,
                "ok": ok,
                "start_s": round(started - self.started, 3),
                "end_s": round(ended - self.started, 3),
            }
        )

    def replica_sample(self, desired: int, ready: int) -> None:
        self.replicas.append((round(time.time() - self.started, 1), desired, ready))

    def by_kind(self) -> dict[str, int]:
        return dict(Counter(a["kind"] for a in self.anomalies))

    def fatal_count(self) -> int:
        return sum(1 for a in self.anomalies if a["kind"] in FATAL)

    def hop_summary(self) -> dict[str, Any]:
        requests = sum(h.requests for h in self.hops)
        changes = sum(h.changes for h in self.hops)
        return {
            "users": len(self.hops),
            "users_served_by_2_or_more_replicas": sum(len(h.replicas) >= 2 for h in self.hops),
            "replicas_seen": sorted(set().union(*(h.replicas for h in self.hops)))
            if self.hops
            else [],
            "share_of_requests_that_changed_replica": round(changes / requests, 3)
            if requests
            else 0.0,
        }

    def record(self, ended: float | None = None) -> dict[str, Any]:
        """The run as plain data: what `analysis.summarize` and the run file take."""
        rows = [
            [
                round(start - self.started, 4),
                round(latency, 1),
                "r" if read else "w",
                int(ok),
                status,
                replica,
                name,
            ]
            for start, latency, read, ok, status, replica, name in self.requests
        ]
        rows.sort(key=lambda row: row[0])
        return {
            "format": FORMAT,
            "started_at": datetime.fromtimestamp(self.started, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "duration_s": round((ended or time.time()) - self.started, 3),
            "params": self.params,
            "logins": self.logins,
            "hops": self.hop_summary(),
            "chaos": self.chaos,
            "replicas": [
                {"t": t, "desired": desired, "ready": ready} for t, desired, ready in self.replicas
            ],
            "anomalies": self.anomalies,
            "requests": {"columns": list(REQUEST_COLUMNS), "rows": rows},
        }


def save(record: dict[str, Any], path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        json.dump(record, out, separators=(",", ":"))


def load(path: Path) -> dict[str, Any]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as source:
        record: dict[str, Any] = json.load(source)
    if record.get("format") != FORMAT:
        raise ValueError(f"{path}: run file format {record.get('format')!r}, expected {FORMAT}")
    return record


RUN = RunState()
