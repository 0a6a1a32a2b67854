"""The end of a run: the run file, summary.json, the timeline picture, one self-contained HTML
page (no script, no external resources: it opens offline and prints) and the console verdict
with the per-event recovery table.

    python -m loadtest.report reports/<run>            # rebuild the report from run.json.gz
    python -m loadtest.report --table reports/<run>    # print the recovery table again
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import analysis, charts, run_state
from .report_page import index_html
from .report_text import ms, recovery_table, scaling_line, share

RUN_FILE = "run.json.gz"


def print_verdict(summary: dict[str, Any]) -> None:
    params, latency = summary["params"], summary["latency_ms"]
    rows = [
        ("target", summary["target"]),
        ("users, duration", f"{summary['users']}, {summary['duration_s']} s"),
        ("chaos", f"{params.get('chaos_backend')} / {params.get('chaos_plan') or '-'}"),
        (
            "requests",
            f"{summary['requests']} ({summary['requests_per_s']}/s), {summary['failures']} failed",
        ),
        (
            "plain error rate",
            f"{share(summary['plain_error_rate'])} (threshold {share(summary['max_error_rate'])})",
        ),
        ("latency p50 / p99 / max", " / ".join(ms(latency[p]) for p in ("p50", "p99", "max"))),
        ("logins", summary["logins"]),
        ("replicas seen", ", ".join(summary["hops"]["replicas_seen"]) or "-"),
        *((f"failures: {k}", v) for k, v in summary["failures_by_class"].items()),
        ("sessions lost", summary["sessions_lost"]),
        *((("replicas", scaling_line(summary)),) if summary.get("scaling") else ()),
        *(("warning", w) for w in summary["verdict"]["warnings"]),
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
    print("-" * 72)
    print("chaos events and recovery (see the report's definitions):")
    print(recovery_table(summary))
    print("=" * 72, flush=True)


# --- files ------------------------------------------------------------------------------------


def write(directory: Path, summary: dict[str, Any], record: dict[str, Any] | None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if record is not None:
        run_state.save(record, directory / RUN_FILE)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    svg = charts.timeline_svg(summary)
    (directory / "timeline.svg").write_text(svg)
    (directory / "index.html").write_text(index_html(summary, svg))
    print(f"report: {directory / 'index.html'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a run's report directory")
    parser.add_argument("--table", action="store_true", help="print the recovery table only")
    args = parser.parse_args()
    if args.table:
        summary = json.loads((args.directory / "summary.json").read_text())
        print("chaos events and recovery:")
        print(recovery_table(summary))
        return
    summary = analysis.summarize(run_state.load(args.directory / RUN_FILE))
    write(args.directory, summary, None)
    print_verdict(summary)


if __name__ == "__main__":
    main()
