"""The end of a run: a verdict, summary.json, a timeline picture and an HTML page."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

from locust.env import Environment

from .consistency import FATAL, NON_FATAL
from .run_state import RunState


def summarize(environment: Environment, run: RunState, *, max_error_rate: float) -> dict[str, Any]:
    total = environment.stats.total
    kinds = run.by_kind()
    fatal = run.fatal_count()
    plain_errors = total.num_failures - fatal
    error_rate = plain_errors / total.num_requests if total.num_requests else 1.0
    reasons = []
    if total.num_requests == 0:
        reasons.append("no requests were made")
    if fatal:
        reasons.append(f"{fatal} session anomalies ({', '.join(k for k in FATAL if kinds.get(k))})")
    if error_rate > max_error_rate:
        reasons.append(f"plain error rate {error_rate:.2%} over the {max_error_rate:.2%} threshold")
    failed_chaos = [c for c in run.chaos if not c["ok"]]
    if failed_chaos:
        reasons.append(f"{len(failed_chaos)} chaos actions could not be carried out")
    duration = max(time.time() - run.started, 1e-9)
    return {
        "target": environment.host,
        "duration_s": round(duration, 1),
        "users": getattr(environment.parsed_options, "num_users", None),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "requests_per_s": round(total.num_requests / duration, 1),
        "latency_ms": {
            p: total.get_response_time_percentile(q)
            for p, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        "logins": run.logins,
        "hops": run.hop_summary(),
        "chaos_events": run.chaos,
        "failures_by_class": {k: kinds.get(k, 0) for k in (*FATAL, *NON_FATAL)},
        "sessions_lost": kinds.get("session_lost", 0),
        "session_anomalies": fatal,
        "plain_error_rate": round(error_rate, 4),
        "max_error_rate": max_error_rate,
        "fatal_anomalies": [a for a in run.anomalies if a["kind"] in FATAL],
        "first_anomalies": run.anomalies[:50],
        "verdict": {"pass": not reasons, "reasons": reasons},
    }


def print_verdict(summary: dict[str, Any]) -> None:
    rows = [
        ("target", summary["target"]),
        (
            "requests",
            f"{summary['requests']} ({summary['requests_per_s']}/s), {summary['failures']} failed",
        ),
        ("logins", summary["logins"]),
        ("replicas seen", ", ".join(summary["hops"]["replicas_seen"]) or "-"),
        (
            "requests that changed replica",
            f"{summary['hops']['share_of_requests_that_changed_replica']:.0%}",
        ),
        ("chaos events", len(summary["chaos_events"])),
        *((f"  t={c['t']:.0f}s", c["outcome"]) for c in summary["chaos_events"]),
        *((f"failures: {k}", v) for k, v in summary["failures_by_class"].items()),
        ("sessions lost", summary["sessions_lost"]),
        (
            "VERDICT",
            "PASS"
            if summary["verdict"]["pass"]
            else "FAIL: " + "; ".join(summary["verdict"]["reasons"]),
        ),
    ]
    width = max(len(str(k)) for k, _ in rows)
    print("\n" + "=" * 72)
    for key, value in rows:
        print(f"{key!s:<{width}}  {value}")
    print("=" * 72, flush=True)


def write(directory: Path, summary: dict[str, Any], run: RunState) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (directory / "timeline.svg").write_text(timeline_svg(run, summary["duration_s"]))
    (directory / "index.html").write_text(index_html(summary))
    print(f"report: {directory / 'index.html'}", flush=True)


def timeline_svg(run: RunState, duration: float) -> str:
    """Requests/s and failed requests/s per second, anomalies as red dots, chaos as lines."""
    chart = _Chart(
        seconds=max(int(duration) + 1, 1), peak=max([*run.requests_per_second.values(), 1])
    )
    parts = chart.axes()
    for event in run.chaos:
        parts += chart.marker(event["t"], event["action"].replace("_", " "))
    parts.append(chart.polyline(run.requests_per_second, "#2a6fdb"))
    parts.append(chart.polyline(run.errors_per_second, "#e08a00"))
    for t, kinds in run.anomalies_per_second.items():
        parts.append(chart.dot(t, sum(kinds.values()), str(dict(kinds))))
    parts += chart.legend(
        [
            ("#2a6fdb", "requests/s"),
            ("#e08a00", "failed requests/s"),
            ("#d22", "anomalies"),
            ("#7a3", "chaos"),
        ]
    )
    return "\n".join(parts) + "\n</svg>\n"


class _Chart:
    WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 960, 320, 50, 40, 20

    def __init__(self, seconds: int, peak: int) -> None:
        self.seconds, self.peak = seconds, peak
        self.base = self.HEIGHT - self.BOTTOM

    def x(self, t: float) -> float:
        return self.LEFT + (self.WIDTH - self.LEFT - 10) * t / self.seconds

    def y(self, value: float) -> float:
        return self.base - (self.base - self.TOP) * value / self.peak

    def axes(self) -> list[str]:
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.WIDTH}" height="{self.HEIGHT}" '
            'font-family="sans-serif" font-size="11">',
            '<rect width="100%" height="100%" fill="white"/>',
            f'<line x1="{self.LEFT}" y1="{self.base}" x2="{self.WIDTH - 10}" y2="{self.base}" '
            'stroke="#444"/>',
            f'<line x1="{self.LEFT}" y1="{self.TOP}" x2="{self.LEFT}" y2="{self.base}" '
            'stroke="#444"/>',
            f'<text x="{self.LEFT - 5}" y="{self.TOP + 4}" text-anchor="end">{self.peak}</text>',
            f'<text x="{self.LEFT - 5}" y="{self.base}" text-anchor="end">0</text>',
        ]
        for t in range(0, self.seconds, max(self.seconds // 10, 1)):
            parts.append(
                f'<text x="{self.x(t):.0f}" y="{self.base + 14}" text-anchor="middle">{t}s</text>'
            )
        return parts

    def polyline(self, series: dict[int, int], colour: str) -> str:
        points = " ".join(
            f"{self.x(t):.1f},{self.y(series.get(t, 0)):.1f}" for t in range(self.seconds)
        )
        return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'

    def marker(self, t: float, label: str) -> list[str]:
        x = self.x(t)
        return [
            f'<line x1="{x:.1f}" y1="{self.TOP}" x2="{x:.1f}" y2="{self.base}" stroke="#7a3" '
            'stroke-dasharray="4 3"/>',
            f'<text x="{x + 3:.1f}" y="{self.TOP + 10}" fill="#472" '
            f'transform="rotate(90 {x + 3:.1f} {self.TOP + 10})">{html.escape(label)}</text>',
        ]

    def dot(self, t: float, count: int, title: str) -> str:
        return (
            f'<circle cx="{self.x(t):.1f}" cy="{self.base - 4}" r="{2 + min(count, 6)}" '
            f'fill="#d22"><title>{html.escape(title)}</title></circle>'
        )

    def legend(self, entries: list[tuple[str, str]]) -> list[str]:
        parts = []
        for i, (colour, text) in enumerate(entries):
            x = self.LEFT + 10 + i * 150
            parts.append(
                f'<rect x="{x}" y="{self.HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
            )
            parts.append(f'<text x="{x + 14}" y="{self.HEIGHT - 5}">{text}</text>')
        return parts


def index_html(summary: dict[str, Any]) -> str:
    verdict = "PASS" if summary["verdict"]["pass"] else "FAIL"
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>"
        for k, v in summary["failures_by_class"].items()
    )
    events = "".join(
        f"<li>t={e['t']:.0f}s: {html.escape(e['outcome'])}</li>" for e in summary["chaos_events"]
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in summary["verdict"]["reasons"])
    target = html.escape(str(summary["target"]))
    replicas = html.escape(", ".join(summary["hops"]["replicas_seen"]))
    changed = summary["hops"]["share_of_requests_that_changed_replica"]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sessionfleet run: {verdict}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}} td{{padding:2px 12px}}
.PASS{{color:#172}} .FAIL{{color:#c11}}</style></head><body>
<h1 class="{verdict}">{verdict}</h1><ul>{reasons}</ul>
<p>{summary["requests"]} requests ({summary["requests_per_s"]}/s) against {target},
{summary["logins"]} logins, {summary["sessions_lost"]} sessions lost; replicas seen:
{replicas}; {changed:.0%} of requests changed replica.</p>
<img src="timeline.svg" alt="timeline: requests, errors, anomalies, chaos events">
<h2>Chaos events</h2><ul>{events}</ul>
<h2>Failures by class</h2><table>{rows}</table>
<p><a href="locust.html">Locust's report</a> · <a href="summary.json">summary.json</a> ·
<a href="locust_stats.csv">CSV</a></p>
</body></html>
"""
