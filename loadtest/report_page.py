"""The report page: one self-contained HTML file (inline SVG and CSS, no script, nothing
fetched) that opens offline and prints on A4 landscape."""

from __future__ import annotations

from html import escape
from typing import Any

from .report_text import EVENT_COLUMNS, event_rows, ms, scaling_line, seconds, share

STYLE = """
body{font-family:sans-serif;max-width:1000px;margin:1.5em auto;color:#222;line-height:1.35}
h1{margin:.2em 0} h2{margin-top:1.4em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0}
td,th{padding:3px 10px;border-bottom:1px solid #e5e5e5;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.n{text-align:right;white-space:nowrap}
.PASS{color:#17701f} .FAIL{color:#b91c1c} .glance{display:flex;flex-wrap:wrap;gap:8px}
.glance div{border:1px solid #ccc;border-radius:4px;padding:6px 10px;min-width:140px}
.glance b{display:block;font-size:1.3em} .small{font-size:.85em;color:#555}
.over{color:#b91c1c;font-weight:bold} .warn{color:#9a5b00} svg{max-width:100%;height:auto}
table.events{font-size:.9em} table.events td{padding:3px 6px} table.events th{padding:3px 6px}
@page{size:A4 landscape;margin:12mm}
@media print{body{max-width:none;margin:0;font-size:10pt} h2{break-after:avoid}
table,figure,.glance,tr{break-inside:avoid} a{color:inherit;text-decoration:none}}
"""


def _table(header: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if i in numeric else ''}>{escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _glance(summary: dict[str, Any]) -> str:
    latency = summary["latency_ms"]
    rate, limit = summary["plain_error_rate"], summary["max_error_rate"]
    events = summary["chaos_events"]
    worst_stall = max(
        (s["seconds"] for e in events for s in (e["write_stall"], e["read_stall"]) if s["stall"]),
        default=0.0 if events else None,
    )
    cards = [
        ("duration", seconds(summary["duration_s"])),
        ("users", str(summary["users"])),
        ("requests", f"{summary['requests']} ({summary['requests_per_s']}/s)"),
        (
            "plain error rate (threshold)",
            f"{share(rate)} ({share(limit)})",
        ),
        ("latency p50 / p95", f"{ms(latency['p50'])} / {ms(latency['p95'])}"),
        ("latency p99 / max", f"{ms(latency['p99'])} / {ms(latency['max'])}"),
        (
            "sessions lost / anomalies",
            f"{summary['sessions_lost']} / {summary['session_anomalies']}",
        ),
        ("longest stall", seconds(worst_stall)),
    ]
    over = ' class="over"' if rate > limit else ""
    return (
        '<div class="glance">'
        + "".join(
            f'<div id="glance-{escape(k.split()[0])}"><span class=small>{escape(k)}</span>'
            f"<b{over if k.startswith('plain') else ''}>{escape(v)}</b></div>"
            for k, v in cards
        )
        + "</div>"
    )


def _params(summary: dict[str, Any]) -> str:
    p = summary["params"]
    schedule = ", ".join(f"{s['action']} at {s['at_s']:g} s" for s in p.get("chaos_schedule", []))
    rows = [
        ["target", str(p.get("target"))],
        ["users (spawn rate/s)", f"{p.get('users')} ({p.get('spawn_rate')})"],
        ["duration", f"{p.get('run_time_s')} s planned, {summary['duration_s']} s measured"],
        ["chaos backend", str(p.get("chaos_backend"))],
        ["chaos plan", f"{p.get('chaos_plan') or '-'}: {schedule or 'no actions'}"],
        ["app version (the target's /healthz)", p.get("app_version") or "not reported"],
        ["load test checkout", p.get("loadtest_commit") or "-"],
        ["started", f"{summary['started_at']} UTC"],
        ["error-rate threshold", share(summary["max_error_rate"])],
    ]
    return _table(["parameter", "value"], rows)


def _events(summary: dict[str, Any]) -> str:
    rows = event_rows(summary)
    if not rows:
        return "<p>No chaos actions in this run.</p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in EVENT_COLUMNS)
    body = []
    for row in rows:
        cells = []
        for column, (text, detail) in row.items():
            numeric = ' class="n"' if column not in ("action",) else ""
            small = f"<br><span class=small>{escape(detail)}</span>" if detail else ""
            cells.append(f"<td{numeric}>{escape(text)}{small}</td>")
        body.append(f'<tr id="event-{row["#"][0]}">' + "".join(cells) + "</tr>")
    base = summary["baseline"]
    note = (
        f"Normal, for comparison (t = {base['from_s']:.1f}-{base['to_s']:.1f} s, before the first "
        f"action): {base['requests_per_s']} requests/s, {share(base['failed_share'])} failed, "
        f"p50 {ms(base['latency_ms']['p50'])}, p99 {ms(base['latency_ms']['p99'])}; longest gap "
        f"between successful writes {seconds(base['longest_write_gap_s'])}, reads "
        f"{seconds(base['longest_read_gap_s'])}."
    )
    return (
        f'<table id="events" class="events"><tr>{head}</tr>{"".join(body)}</table>'
        f'<p class="small">{escape(note)}</p>'
    )


DEFINITIONS = """<p class="small">How the figures are computed, from every request's start,
end, kind, outcome, latency and replica (times in seconds since the run started; run.json.gz
holds the records). <b>started</b>: when the action began to change the system, after its
look-ups; <b>ended</b>: when it returned. <b>writes / reads stalled</b>: the longest time between
the action's start and the next action in which no write (POST, DELETE) / read (GET) completed
successfully, with when it began and ended; "none" when shorter than {floor:g} s or twice the
longest such gap before the first action. <b>errors normal after</b>: whole seconds from the
start until the last second in which more than {normal} of the requests started failed, if at
least {settle} seconds followed before the next action. <b>recovered after</b>: the later of
that and the end of either stall. <b>failed</b> (requests started) and <b>worst latency</b> /
<b>p99</b> (requests in flight) cover the impact: from the start until recovered, or the action's
end if later. Latency percentiles are nearest rank over raw latencies. The plain error rate
leaves out session anomalies (any one of them fails the run by itself).</p>"""


def _definitions(summary: dict[str, Any]) -> str:
    figures = summary["definitions"]
    return DEFINITIONS.format(
        floor=figures["stall_floor_s"],
        normal=share(summary["baseline"]["normal_error_share"]),
        settle=figures["settle_s"],
    )


def index_html(summary: dict[str, Any], svg: str) -> str:
    verdict = "PASS" if summary["verdict"]["pass"] else "FAIL"
    reasons = "".join(f"<li>{escape(r)}</li>" for r in summary["verdict"]["reasons"])
    reasons += "".join(f'<li class="warn">{escape(w)}</li>' for w in summary["verdict"]["warnings"])
    replicas = _table(
        ["replica", "requests", "share", "failed", "p50", "p99"],
        [
            [
                r["replica"],
                str(r["requests"]),
                share(r["share"]),
                str(r["failed"]),
                ms(r["latency_ms"]["p50"]),
                ms(r["latency_ms"]["p99"]),
            ]
            for r in summary["replicas"]
        ],
        numeric={1, 2, 3, 4, 5},
    )
    classes = _table(
        ["class", "requests"],
        [[k, str(v)] for k, v in summary["failures_by_class"].items()],
        numeric={1},
    )
    fatal = "".join(
        f"<li>t = {a['t']:.1f} s, {escape(a['user'])}, {escape(a['request'])}: "
        f"{escape(a['kind'])}: {escape(a['detail'])}</li>"
        for a in summary["fatal_anomalies"][:50]
    )
    hops = summary["hops"]
    svg_inline = svg.split("\n", 1)[1] if svg.startswith("<?xml") else svg
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sessionfleet chaos run: {verdict}</title>
<style>{STYLE}</style></head><body>
<h1 class="{verdict}">{verdict}</h1>
<p>sessionfleet load run against {escape(str(summary["target"]))},
started {escape(summary["started_at"])} UTC.</p><ul>{reasons}</ul>
{_glance(summary)}
<h2>Chaos events and recovery</h2>
{_events(summary)}
<figure style="margin:0">{svg_inline}</figure>
{f'<p id="scaling">{escape(scaling_line(summary))}</p>' if summary.get("scaling") else ""}
{_definitions(summary)}
<h2>Run parameters</h2>
{_params(summary)}
<h2>Requests per replica</h2>
{replicas}
<p class="small">{hops["users_served_by_2_or_more_replicas"]} of {hops["users"]} users were
served by two or more replicas; {hops["share_of_requests_that_changed_replica"]:.0%} of
requests landed on a different replica than the same user's previous one.
{summary["logins"]} logins.</p>
<h2>Failures by class</h2>
{classes}
{"<h2>Session anomalies</h2><ul>" + fatal + "</ul>" if fatal else ""}
<p class="small">Also in this directory: summary.json (every figure above), run.json.gz (every
request), timeline.svg, locust.html (Locust's own report).</p>
</body></html>
"""
