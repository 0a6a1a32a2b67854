"""Everything one load run records: anomalies, hops, chaos events, a per-second timeline.

One instance per Locust process (`RUN`); the report is built from it when the run ends.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .consistency import FATAL, Anomaly, Hops


@dataclass
class RunState:
    started: float = field(default_factory=time.time)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    chaos: list[dict[str, Any]] = field(default_factory=list)
    hops: list[Hops] = field(default_factory=list)
    logins: int = 0
    requests_per_second: Counter[int] = field(default_factory=Counter)
    errors_per_second: Counter[int] = field(default_factory=Counter)
    anomalies_per_second: dict[int, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )

    def second(self, at: float | None = None) -> int:
        return int((at or time.time()) - self.started)

    def request(self, failed: bool) -> None:
        now = self.second()
        self.requests_per_second[now] += 1
        if failed:
            self.errors_per_second[now] += 1

    def anomaly(self, user: str, request: str, anomaly: Anomaly) -> None:
        at = time.time()
        self.anomalies.append(
            {
                "t": round(at - self.started, 3),
                "user": user,
                "request": request,
                "kind": anomaly.kind,
                "detail": anomaly.detail,
            }
        )
        self.anomalies_per_second[self.second(at)][anomaly.kind] += 1

    def chaos_event(self, action: str, outcome: str, ok: bool) -> None:
        self.chaos.append(
            {
                "t": round(time.time() - self.started, 3),
                "action": action,
                "outcome": outcome,
                "ok": ok,
            }
        )

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


RUN = RunState()
