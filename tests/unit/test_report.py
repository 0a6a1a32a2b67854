"""The chaos report, rendered from a recorded run (tests/fixtures/chaos-run.json.gz: a `make demo`
run cut after its node loss), states figures that the recorded requests bear out. The expected
figures are recomputed here the slow, obvious way, from the raw rows."""

from __future__ import annotations

import itertools
import math
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from loadtest import analysis, chaos_plan, charts, report, report_page, report_text
from loadtest.chaos.base import ChaosBackend
from loadtest.run_state import RunState, load

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "chaos-run.json.gz"


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    return load(FIXTURE)


@pytest.fixture(scope="module")
def rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    columns = run["requests"]["columns"]
    return [dict(zip(columns, row, strict=True)) for row in run["requests"]["rows"]]


@pytest.fixture(scope="module")
def summary(run: dict[str, Any]) -> dict[str, Any]:
    return analysis.summarize(run)


@pytest.fixture(scope="module")
def page(summary: dict[str, Any]) -> str:
    return report_page.index_html(summary, charts.timeline_svg(summary))


# --- the slow, obvious way ---------------------------------------------------------------------


def end(row: dict[str, Any]) -> float:
    return float(row["start_s"]) + row["latency_ms"] / 1000


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return next(v for i, v in enumerate(ordered, 1) if i >= q * len(ordered))


def longest_gap(
    rows: list[dict[str, Any]], kind: str, begin: float, until: float
) -> tuple[float, float]:
    """The longest time within [begin, until) in which no successful `kind` request
    completed: (its length, when it ended)."""
    ends = sorted(end(r) for r in rows if r["ok"] and r["kind"] == kind)
    before = [e for e in ends if e <= begin]
    after = [e for e in ends if e >= until]
    points = [before[-1] if before else begin, *(e for e in ends if begin < e < until)]
    points.append(after[0] if after else until)
    gaps = []
    for a, b in itertools.pairwise(points):
        gaps.append((min(b, until) - max(a, begin), min(b, until)))
    return max(gaps)


def errors_normal_after(rows: list[dict[str, Any]], start: float, until: float, limit: float):
    seconds = math.ceil(until - start)
    bad = []
    for k in range(seconds):
        started = [
            r
            for r in rows
            if start + k <= r["start_s"] < min(start + k + 1, until) and end(r) <= until
        ]
        failed = [r for r in started if not r["ok"]]
        bad.append(bool(started) and len(failed) / len(started) > limit)
    if not any(bad):
        return 0.0
    last = max(k for k, b in enumerate(bad) if b)
    return float(last + 1) if seconds - (last + 1) >= analysis.SETTLE_S else None


def windows(run: dict[str, Any], rows: list[dict[str, Any]]) -> list[tuple[dict, float]]:
    events = sorted(run["chaos"], key=lambda e: e["start_s"])
    load_end = max(r["start_s"] for r in rows)
    return [
        (e, events[i + 1]["start_s"] if i + 1 < len(events) else load_end)
        for i, e in enumerate(events)
    ]


def synthetic_run(
    rows: list[list[Any]], chaos: list[tuple[str, float, float]], max_error_rate: float
) -> dict[str, Any]:
    """A recorded run of 60 s on one replica: request rows, then (action, start, end)."""
    return {
        "format": 1,
        "started_at": "2025-01-01 00:00:00",
        "duration_s": 60.0,
        "params": {"max_error_rate": max_error_rate},
        "logins": 0,
        "hops": {
            "users": 0,
            "replicas_seen": ["a"],
            "users_served_by_2_or_more_replicas": 0,
            "share_of_requests_that_changed_replica": 0.0,
        },
        "chaos": [
            {"action": action, "outcome": "x", "ok": True, "start_s": start, "end_s": end}
            for action, start, end in chaos
        ],
        "anomalies": [],
        "requests": {
            "columns": ["start_s", "latency_ms", "kind", "ok", "status", "replica", "name"],
            "rows": rows,
        },
    }


def as_ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


# --- the page's text -----------------------------------------------------------------------------


class Cells(HTMLParser):
    """Text of each table cell, by row id, and of each element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.ids: dict[str, str] = {}
        self._row: str | None = None
        self._cell: list[str] | None = None
        self._open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "tr":
            self._row = attributes.get("id") or None
            if self._row:
                self.rows[self._row] = []
        elif tag == "td" and self._row:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" | ")
        if attributes.get("id") and tag not in ("tr", "br"):
            self._open.append((str(attributes["id"]), []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._row:
            self.rows[self._row].append("".join(self._cell).strip())
            self._cell = None
        if tag == "div" and self._open:
            name, text = self._open.pop()
            self.ids[name] = " ".join(" ".join(text).split())

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, text in self._open:
            text.append(data)


def parsed(page: str) -> Cells:
    cells = Cells()
    cells.feed(page)
    return cells


# --- tests -------------------------------------------------------------------------------------


def test_fixture_is_a_real_chaos_run(run: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    assert [e["action"] for e in run["chaos"]] == ["kill_app", "kill_redis_master", "lose_node"]
    assert len(rows) > 20_000 and {r["replica"] for r in rows} >= {"app-a", "app-b", "app-c"}


def test_totals_and_latency_match_the_records(
    summary: dict[str, Any], rows: list[dict[str, Any]], page: str
) -> None:
    latencies = [r["latency_ms"] for r in rows]
    failed = sum(not r["ok"] for r in rows)
    assert summary["requests"] == len(rows) and summary["failures"] == failed
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert summary["latency_ms"][name] == round(nearest_rank(latencies, q), 1)
    assert summary["latency_ms"]["max"] == max(latencies)
    glance = parsed(page).ids
    assert glance["glance-requests"].startswith(f"requests {len(rows)} (")
    p50, p99 = nearest_rank(latencies, 0.5), nearest_rank(latencies, 0.99)
    assert as_ms(p50) in glance["glance-latency"] or as_ms(p99) in glance["glance-latency"]
    fatal = sum(1 for a in summary["fatal_anomalies"])
    rate = (failed - fatal) / len(rows)
    assert f"{rate:.2%} ({summary['max_error_rate']:.2%})" in glance["glance-plain"]


def test_event_figures_match_the_records(
    run: dict[str, Any], rows: list[dict[str, Any]], summary: dict[str, Any], page: str
) -> None:
    table = parsed(page).rows
    baseline = summary["baseline"]
    for number, (event, until) in enumerate(windows(run, rows), 1):
        start = event["start_s"]
        cells = dict(zip(report_text.EVENT_COLUMNS, table[f"event-{number}"], strict=True))
        assert cells["when"] == f"{start:.1f}-{event['end_s']:.1f} s"
        stall_ends = []
        for column, kind, normal_gap in (
            ("writes stalled", "w", baseline["longest_write_gap_s"]),
            ("reads stalled", "r", baseline["longest_read_gap_s"]),
        ):
            gap, gap_end = longest_gap(rows, kind, start, until)
            is_stall = gap >= max(analysis.STALL_FLOOR_S, 2 * normal_gap)
            if is_stall:
                stall_ends.append(gap_end - start)
            expected = f"{gap:.1f} s" if is_stall else "none"
            assert cells[column].split(" | ")[0] == expected, (event["action"], column)
        limit = baseline["normal_error_share"]
        errors = errors_normal_after(rows, start, until, limit)
        assert errors is not None, event["action"]  # every event of this run recovered
        assert cells["errors normal after"] == f"{errors:.1f} s", event["action"]
        recovered = max([errors, *stall_ends])
        assert cells["recovered after"] == f"{recovered:.1f} s", event["action"]
        impact_end = max(event["end_s"], start + recovered, start + 1)
        in_flight = [r for r in rows if r["start_s"] < impact_end and end(r) > start]
        worst = max(in_flight, key=lambda r: r["latency_ms"])
        assert cells["worst latency"].split(" | ")[0] == as_ms(worst["latency_ms"])
        assert worst["name"] in cells["worst latency"]
        started = [r for r in rows if start <= r["start_s"] < impact_end]
        assert cells["failed"] == str(sum(not r["ok"] for r in started))


def test_the_node_loss_stalled_writes_and_failed_requests(summary: dict[str, Any]) -> None:
    # What the recorded run shows (docs/loadtest.md quotes it): not a property of the code.
    node_loss = summary["chaos_events"][2]
    assert node_loss["write_stall"]["stall"] and node_loss["write_stall"]["seconds"] > 1.0
    assert node_loss["failed_in_impact"] > 0
    assert node_loss["failures_from_s"] >= node_loss["start_s"]  # never before its marker


def test_requests_per_replica_match_the_records(
    rows: list[dict[str, Any]], summary: dict[str, Any], page: str
) -> None:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["replica"] or "(no answer)"] = counts.get(r["replica"] or "(no answer)", 0) + 1
    assert {r["replica"]: r["requests"] for r in summary["replicas"]} == counts
    for replica, count in counts.items():
        assert re.search(rf"<td>{re.escape(replica)}</td><td class=n>{count}</td>", page)


def test_timeline_adds_up_to_the_records(
    rows: list[dict[str, Any]], summary: dict[str, Any], page: str
) -> None:
    line = summary["timeline"]
    assert sum(line["ok"]) + sum(line["failed"]) == len(rows)
    for second in range(len(line["t"])):
        started = [r["latency_ms"] for r in rows if second <= r["start_s"] < second + 1]
        expected = round(nearest_rank(started, 0.99), 1) if started else None  # a standstill
        assert line["p99_ms"][second] == expected, second
    assert None in line["p99_ms"]  # the failover stopped every user for a whole second
    for second, failed in enumerate(line["failed"]):
        if failed:  # each second with failures has a readable tooltip saying how many
            assert f"<title>t = {second}-{second + 1} s: {failed} failed" in page


def test_page_is_one_self_contained_readable_file(page: str) -> None:
    assert "<script" not in page and "@import" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    assert page.count("<svg") == 1  # the timeline is inline, not an <img> of a file
    assert "{'" not in page and "'}" not in page  # no Python reprs in text or tooltips
    for label in ("successful requests/s", "failed/s", "ms (log scale)", "requests/s"):
        assert f">{label}</text>" in page
    assert "time since the run started (s)" in page
    assert "@media print" in page and "@page" in page
    for parameter in ("target", "users (spawn rate/s)", "duration", "chaos plan", "app version"):
        assert f"<td>{parameter}" in page


def test_console_table_is_the_pages_table(summary: dict[str, Any], page: str) -> None:
    table = parsed(page).rows
    lines = report_text.recovery_table(summary).splitlines()
    assert lines[0].split() == " ".join(report_text.EVENT_COLUMNS).split()
    for number, line in enumerate(lines[1:], 1):
        cells = table[f"event-{number}"]
        for column, cell in zip(report_text.EVENT_COLUMNS, cells, strict=True):
            figure = cell.split(" | ")[0]
            assert figure in line, (number, column)


def test_summary_json_carries_the_page_figures(summary: dict[str, Any], tmp_path: Path) -> None:
    report.write(tmp_path, summary, None)
    written = (tmp_path / "summary.json").read_text()
    assert '"errors_normal_after_s"' in written and '"write_stall"' in written
    assert (tmp_path / "index.html").read_text().count("<svg") == 1


def test_a_synthetic_outage_gives_the_figures_it_was_built_with() -> None:
    """Writes every 10 ms; from t = 30.0 s none succeeds for 2.5 s and those sent in the
    first 1.5 s fail; reads carry on but slowly for 1 s, and one sent just before the action
    hangs for 2.6 s."""
    rows = []
    for i in range(6000):
        t = i * 0.01
        write = i % 2 == 0
        ok, latency = True, 5.0
        if write and 30.0 <= t < 31.5:
            ok, latency = False, 1000.0 * (32.5 - t)  # 503 when the store comes back
        elif write and 31.5 <= t < 32.5:
            latency = 1000.0 * (32.5 - t) + 5  # held until the new master answers
        elif not write and 30.0 <= t < 31.0:
            latency = 800.0
        elif i == 2995:  # t = 29.95, a read
            latency = 2600.0
        rows.append([t, latency, "w" if write else "r", int(ok), 200 if ok else 503, "a", "/x"])
    record = synthetic_run(rows, [("kill_redis_master", 30.0, 30.2)], max_error_rate=0.05)
    [event] = analysis.summarize(record)["chaos_events"]
    assert event["write_stall"]["stall"]
    assert event["write_stall"]["seconds"] == pytest.approx(2.51, abs=0.011)
    assert event["write_stall"]["from_s"] == pytest.approx(30.0, abs=0.011)
    assert event["read_stall"]["seconds"] == pytest.approx(0.8, abs=0.011)
    assert event["errors_normal_after_s"] == 2.0  # failures in seconds 0 and 1 after the start
    assert event["recovered_after_s"] == pytest.approx(2.51, abs=0.011)
    assert event["failed_in_impact"] == 75
    # in flight during the impact, though sent before the action
    assert event["worst_request"]["latency_ms"] == 2600.0
    assert event["worst_request"]["start_s"] == pytest.approx(29.95)


class Backend(ChaosBackend):
    """Looks something up (50 ms), then acts (50 ms): like a node loss finding the master."""

    def __init__(self) -> None:
        self.acted: list[float] = []

    def _act(self) -> str:
        time.sleep(0.05)
        self.acting()
        self.acted.append(time.time())
        time.sleep(0.05)
        return "done"

    def kill_app(self, replica: str = "") -> str:
        return self._act()

    def kill_redis_master(self) -> str:
        return self._act()

    def recreate_redis_master_with_new_ip(self) -> str:
        return self._act()

    def master_node(self) -> str:
        time.sleep(0.05)
        return "b"

    def lose_node(self, node: str) -> str:
        return self._act()

    def drain_node(self, node: str) -> str:
        return self._act()

    def upgrade(self) -> str:
        return self._act()

    def restore_node(self, node: str) -> str:
        return self._act()


def test_chaos_events_are_stamped_when_the_action_acts_and_when_it_returns() -> None:
    backend, run = Backend(), RunState()
    schedule = [(0.0, "kill_app"), (0.0, "lose_node"), (0.0, "restore_node")]
    chaos_plan.execute(schedule, backend, run, sleep=lambda _: None)
    assert [e["action"] for e in run.chaos] == ["kill_app", "lose_node", "restore_node"]
    for event, acted in zip(run.chaos, backend.acted, strict=True):
        assert event["start_s"] == pytest.approx(acted - run.started, abs=0.002)  # not the call
        assert event["end_s"] - event["start_s"] == pytest.approx(0.05, abs=0.04)


def test_report_rebuilds_from_a_run_file_and_prints_the_table(tmp_path: Path) -> None:
    """What `make demo` runs last: the table again, from the report directory."""
    shutil.copy(FIXTURE, tmp_path / "run.json.gz")
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "loadtest.report"]
    rebuilt = subprocess.run(
        [*command, str(tmp_path)], cwd=root, capture_output=True, text=True, check=True
    )
    assert "VERDICT" in rebuilt.stdout and (tmp_path / "index.html").is_file()
    table = subprocess.run(
        [*command, "--table", str(tmp_path)], cwd=root, capture_output=True, text=True, check=True
    )
    summary = analysis.summarize(load(FIXTURE))
    assert report_text.recovery_table(summary) in table.stdout
    assert table.stdout.count("\n") == len(summary["chaos_events"]) + 2


def test_an_outage_outlasting_its_window_is_flagged_not_timed() -> None:
    rows = [
        [i * 0.01, 5.0, "w", int(not (i * 0.01 >= 30.0 and i % 3 == 0)), 200, "a", "/x"]
        for i in range(6000)
    ]  # from t = 30 s to the end, a third of the requests fail
    record = synthetic_run(rows, [("lose_node", 30.0, 30.1)], max_error_rate=0.5)
    summary = analysis.summarize(record)
    [event] = summary["chaos_events"]
    assert event["errors_normal_after_s"] is None and event["recovered_after_s"] is None
    assert summary["verdict"]["pass"]  # 1/6 of all requests failed: under the 50% threshold
    [warning] = summary["verdict"]["warnings"]
    assert "lose_node" in warning and "30.0 s" in warning
    [row] = report_text.event_rows(summary)
    assert row["errors normal after"] == ("> 30.0 s", "end of run")
    page = report_page.index_html(summary, charts.timeline_svg(summary))
    assert 'class="warn"' in page and "&gt; 30.0 s" in page


def test_a_failure_the_next_action_caused_is_not_charged_to_the_one_before() -> None:
    """Found in a demo run: a login sent 12 ms before the master kill failed because of it (1 of
    its second's ~70 requests), and the app kill 36 s earlier was reported as 'errors not back
    to normal'."""
    rows = [[i * 0.01, 5.0, "w", 1, 200, "a", "/x"] for i in range(6000)]
    for i in (3998, 3999):  # 2 % of their second, in flight at t = 40.0
        rows[i] = [i * 0.01, 300.0, "w", 0, 503, "a", "/login"]
    rows += [[40.0 + i * 0.01, 200.0, "w", 0, 503, "a", "/x"] for i in range(50)]
    rows.sort()
    record = synthetic_run(
        rows, [("kill_app", 20.0, 20.1), ("kill_redis_master", 40.0, 40.1)], max_error_rate=0.5
    )
    kill_app, kill_master = analysis.summarize(record)["chaos_events"]
    assert kill_app["errors_normal_after_s"] == 0.0
    assert kill_master["errors_normal_after_s"] == 1.0
