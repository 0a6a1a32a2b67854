"""A run's figures as words: the same text on the report page and on the console (the
recovery table `make demo` prints last is the page's table)."""

from __future__ import annotations

from typing import Any

Cell = tuple[str, str]  # the figure, and a detail the page prints below it in small type


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def share(value: float) -> str:
    return f"{value:.2%}"


def after(value: float | None, event: dict[str, Any], last: bool) -> Cell:
    """Seconds after the action's start; not within its window: more than the window, and
    what ended the window."""
    if value is not None:
        return seconds(value), ""
    window = event["window_end_s"] - event["start_s"]
    return f"> {window:.1f} s", "end of run" if last else "next action"


def stall(figure: dict[str, Any]) -> Cell:
    if not figure["stall"]:
        return "none", ""
    return f"{figure['seconds']:.1f} s", f"t {figure['from_s']:.1f}-{figure['to_s']:.1f}"


def worst(event: dict[str, Any]) -> Cell:
    request = event["worst_request"]
    if request is None:
        return "-", ""
    return ms(request["latency_ms"]), f"{request['name']}, {request['status'] or 'no answer'}"


EVENT_COLUMNS = (
    "#",
    "action",
    "when",
    "writes stalled",
    "reads stalled",
    "errors normal after",
    "recovered after",
    "failed",
    "worst latency",
    "p99",
)


def event_rows(summary: dict[str, Any]) -> list[dict[str, Cell]]:
    """One row per chaos event: the same figures on the page and on the console."""
    events = summary["chaos_events"]
    rows = []
    for number, event in enumerate(events, 1):
        last = number == len(events)
        cells: tuple[Cell, ...] = (
            (str(number), ""),
            (event["action"] + ("" if event["ok"] else " (FAILED)"), event["outcome"]),
            (f"{event['start_s']:.1f}-{event['end_s']:.1f} s", ""),
            stall(event["write_stall"]),
            stall(event["read_stall"]),
            after(event["errors_normal_after_s"], event, last),
            after(event["recovered_after_s"], event, last),
            (str(event["failed_in_impact"]), ""),
            worst(event),
            (ms(event["latency_in_impact_ms"]["p99"]), ""),
        )
        rows.append(dict(zip(EVENT_COLUMNS, cells, strict=True)))
    return rows


def console_cell(column: str, cell: Cell) -> str:
    text, detail = cell
    return f"{text} ({detail})" if detail and column != "action" else text


def recovery_table(summary: dict[str, Any]) -> str:
    rows = [{c: console_cell(c, cell) for c, cell in row.items()} for row in event_rows(summary)]
    if not rows:
        return "no chaos events"
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in EVENT_COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in EVENT_COLUMNS).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in EVENT_COLUMNS).rstrip() for r in rows]
    return "\n".join(lines)


def scaling_line(summary: dict[str, Any]) -> str:
    """The app's replica counts over the run, in one sentence ("" when none were sampled)."""
    figures = summary.get("scaling")
    if not figures:
        return ""
    first, last = figures["first"], figures["last"]
    peak = f"{figures['peak_desired']}/{figures['peak_ready']}"
    text = (
        f"App replicas (desired/ready): {first['desired']}/{first['ready']} at the start, "
        f"peak {peak} at t = {figures['peak_at_s']:.0f} s, "
        f"{last['desired']}/{last['ready']} at the end"
    )
    if figures["scale_in_from_s"] is not None:
        failed = figures["failed_during_scale_in"]
        by_status = ", ".join(
            f"{n} x {k}" for k, n in figures["failed_during_scale_in_by_status"].items()
        )
        text += (
            f"; scale-in from t = {figures['scale_in_from_s']:.0f} s: {failed} failed requests"
            + (f" ({by_status})" if by_status else "")
        )
    return text + "."
