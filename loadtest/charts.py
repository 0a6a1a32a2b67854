"""The run's timeline as one SVG: stacked panels over a shared time axis (throughput, failed
requests, latency, requests per replica), chaos actions and their impact shaded across all of
them. Plain SVG, no script: it prints, and opens offline. Lines differ by dash as well as by
colour, so a black-and-white print still tells them apart."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from html import escape
from typing import Any

WIDTH, LEFT, RIGHT = 960, 78, 16
PANEL_H, PANEL_GAP, HEADER, FOOTER = 130, 46, 40, 40
BLUE, ORANGE, RED, GREEN, GREY = "#1f5fbf", "#d97706", "#c81e1e", "#2f7d32", "#888"
REPLICA_STYLES = [
    ("#1b9e77", ""),
    ("#7570b3", "7 3"),
    ("#d95f02", "2 2"),
    ("#e7298a", "9 3 2 3"),
    ("#66a61e", "4 4"),
    ("#a6761d", "1 3"),
]


def nice_ticks(peak: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 5 x 10^n) up to at least `peak`."""
    peak = max(peak, 1.0)
    raw = peak / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(math.ceil(peak / step) + 1)]


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"


class _Panel:
    def __init__(self, top: float, seconds: int, title: str, y_title: str) -> None:
        self.top, self.bottom = top, top + PANEL_H
        self.seconds = max(seconds, 1)
        self.title, self.y_title = title, y_title
        self.parts: list[str] = []

    def x(self, t: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * min(max(t, 0), self.seconds) / self.seconds

    def frame(self, ticks: Sequence[tuple[float, str]]) -> None:
        mid = (self.top + self.bottom) / 2
        self.parts += [
            f'<text x="{LEFT}" y="{self.top - 8}" font-weight="bold">{escape(self.title)}</text>',
            f'<text x="16" y="{mid:.0f}" text-anchor="middle" transform="rotate(-90 16 {mid:.0f})"'
            f">{escape(self.y_title)}</text>",
        ]
        for y, label in ticks:
            self.parts.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                'stroke="#e3e3e3"/>'
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
            )
        self.parts.append(
            f'<rect x="{LEFT}" y="{self.top}" width="{WIDTH - LEFT - RIGHT}" height="{PANEL_H}" '
            'fill="none" stroke="#555"/>'
        )

    def line(
        self,
        values: Sequence[float | None],
        y: Any,
        colour: str,
        dash: str = "",
        width: float = 1.6,
    ) -> None:
        """A polyline through each second's midpoint; seconds without a value break it."""
        segments, current = [], []
        for t, value in enumerate(values):
            if value is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append(f"{self.x(t + 0.5):.1f},{y(value):.1f}")
        if current:
            segments.append(current)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        for points in segments:
            if len(points) == 1:
                points = points * 2
            self.parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="{width}"{style} '
                f'points="{" ".join(points)}"/>'
            )


def _linear(panel: _Panel, peak: float) -> tuple[Any, list[tuple[float, str]]]:
    ticks = nice_ticks(peak)
    top = ticks[-1]

    def y(value: float) -> float:
        return panel.bottom - PANEL_H * value / top

    return y, [(y(t), _fmt(t)) for t in ticks]


def _log(panel: _Panel, low: float, high: float) -> tuple[Any, list[tuple[float, str]]]:
    lo = math.floor(math.log10(max(low, 0.1)))
    hi = max(math.ceil(math.log10(max(high, 1.0))), lo + 1)

    def y(value: float) -> float:
        return panel.bottom - PANEL_H * (math.log10(max(value, 10**lo)) - lo) / (hi - lo)

    return y, [(y(10**e), _fmt(10**e)) for e in range(lo, hi + 1)]


def timeline_svg(summary: dict[str, Any]) -> str:
    line = summary["timeline"]
    seconds = len(line["t"])
    panels = [
        _Panel(HEADER + 24, seconds, "Throughput", "successful requests/s"),
        _Panel(0, seconds, "Failed requests (own scale) and session anomalies", "failed/s"),
        _Panel(0, seconds, "Latency by request start: p50 solid, p99 dashed", "ms (log scale)"),
        _Panel(0, seconds, "Answered requests per replica (X-Served-By)", "requests/s"),
    ]
    counts = line.get("app_replicas", {})
    sampled = any(v is not None for v in counts.get("desired", []))
    if sampled:
        panels.append(_Panel(0, seconds, "App replicas: desired dashed, ready solid", "pods"))
    for above, panel in itertools.pairwise(panels):
        panel.top = above.bottom + PANEL_GAP
        panel.bottom = panel.top + PANEL_H
    throughput, failed, lat, replicas = panels[:4]
    height = panels[-1].bottom + FOOTER

    y, ticks = _linear(throughput, max(line["ok"], default=1))
    throughput.frame(ticks)
    throughput.line(line["ok"], y, BLUE)

    y, ticks = _linear(failed, max(line["failed"], default=1))
    failed.frame(ticks)
    anomalies = {a["t"]: a["kinds"] for a in line["anomalies"]}
    bar = max(failed.x(1) - failed.x(0) - 0.6, 0.8)
    for t, count in enumerate(line["failed"]):
        kinds = anomalies.get(t, {})
        if count or kinds:
            label = f"t = {t}-{t + 1} s: {count} failed"
            if kinds:
                label += " (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")"
            failed.parts.append(
                f'<rect x="{failed.x(t):.1f}" y="{y(count):.1f}" width="{bar:.1f}" '
                f'height="{failed.bottom - y(count):.1f}" fill="{ORANGE}">'
                f"<title>{escape(label)}</title></rect>"
            )
    for a in summary["fatal_anomalies"]:
        x = failed.x(a["t"])
        label = escape(f"t = {a['t']:.1f} s: {a['kind']}: {a['detail']}")
        failed.parts.append(
            f'<path d="M{x:.1f},{failed.top + 2} l5,9 l-10,0 z" fill="{RED}">'
            f"<title>{label}</title></path>"
        )

    known = [v for v in line["p50_ms"] + line["p99_ms"] if v is not None]
    y, ticks = _log(lat, min(known, default=1), max(known, default=10))
    lat.frame(ticks)
    lat.line(line["p50_ms"], y, BLUE)
    lat.line(line["p99_ms"], y, RED, dash="6 3")

    peak = max((max(v, default=0) for v in line["per_replica"].values()), default=1)
    y, ticks = _linear(replicas, peak)
    replicas.frame(ticks)
    legend = []
    for i, (name, values) in enumerate(sorted(line["per_replica"].items())):
        colour, dash = REPLICA_STYLES[i % len(REPLICA_STYLES)]
        replicas.line(values, y, colour, dash)
        legend.append((name, colour, dash))
    replicas.parts += _legend(replicas.top - 8, legend)

    if sampled:
        pods = panels[4]
        known = [v for v in counts["desired"] + counts["ready"] if v is not None]
        y, ticks = _linear(pods, max(known, default=1))
        pods.frame(ticks)
        pods.line(counts["desired"], y, GREY, dash="6 3")
        pods.line(counts["ready"], y, GREEN)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="{WIDTH}" height="{height:.0f}" font-family="sans-serif" font-size="12" '
        'role="img" aria-labelledby="timeline-title">',
        '<title id="timeline-title">Timeline of the run: throughput, failed requests, latency '
        "and requests per replica per second, chaos actions shaded</title>",
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    parts += _chaos_bands(summary["chaos_events"], panels)
    for panel in panels:
        parts += panel.parts
    parts += _x_axis(panels[-1], seconds)
    return "\n".join(parts) + "\n</svg>\n"


def _chaos_bands(events: list[dict[str, Any]], panels: list[_Panel]) -> list[str]:
    """Per event: its impact lightly shaded, the action itself in green, a number on top."""
    first = panels[0]
    parts = [
        f'<text x="{LEFT}" y="14" fill="#333">Chaos actions, numbered as in the table '
        "(green: the action itself; pink: until errors and stalls were over)</text>"
    ]
    placed: list[float] = []
    for number, event in enumerate(events, 1):
        x0, x1 = first.x(event["start_s"]), first.x(event["end_s"])
        impact = first.x(event["impact_end_s"])
        title = escape(f"{number}: {event['action']} ({event['outcome']})")
        for panel in panels:
            parts.append(
                f'<rect x="{x0:.1f}" y="{panel.top}" width="{max(impact - x0, 1):.1f}" '
                f'height="{PANEL_H}" fill="#f4c7c7" fill-opacity="0.45"><title>{title}</title>'
                "</rect>"
                f'<rect x="{x0:.1f}" y="{panel.top}" width="{max(x1 - x0, 2):.1f}" '
                f'height="{PANEL_H}" fill="{GREEN}" fill-opacity="0.7"><title>{title}</title>'
                "</rect>"
            )
        cx = max([x0, *(other + 20 for other in placed)])  # labels never touch: shift right
        placed.append(cx)
        cy = HEADER - 10
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy}" r="9" fill="{GREEN}"><title>{title}</title></circle>'
            f'<text x="{cx:.1f}" y="{cy + 4}" text-anchor="middle" fill="white" '
            f'font-weight="bold">{number}</text>'
        )
    return parts


def _x_axis(panel: _Panel, seconds: int) -> list[str]:
    step = nice_ticks(seconds, 10)[1]
    parts = []
    t = 0.0
    while t <= seconds:
        parts.append(
            f'<text x="{panel.x(t):.1f}" y="{panel.bottom + 15}" text-anchor="middle">'
            f"{_fmt(t)}</text>"
        )
        t += step
    middle = (LEFT + WIDTH - RIGHT) / 2
    parts.append(
        f'<text x="{middle:.0f}" y="{panel.bottom + 31}" text-anchor="middle">'
        "time since the run started (s)</text>"
    )
    return parts


def _legend(y: float, replicas: list[tuple[str, str, str]]) -> list[str]:
    """Right-aligned on the panel's title row."""
    widths = [44 + 7 * len(name) for name, _, _ in replicas]
    parts, x = [], WIDTH - RIGHT - sum(widths)
    for (name, colour, dash), width in zip(replicas, widths, strict=True):
        style = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 26}" y2="{y - 4}" stroke="{colour}" '
            f'stroke-width="2"{style}/><text x="{x + 32}" y="{y}">{escape(name)}</text>'
        )
        x += width
    return parts
