"""The scale plan: its load ramp, the replica sampler, and the verdict on replicas over time."""

from __future__ import annotations

from typing import Any

import pytest

from loadtest import analysis, chaos_plan, charts, report_page, scaling
from loadtest.chaos.base import ChaosBackend
from loadtest.run_state import RunState
from tests.unit.test_report import synthetic_run


def samples(*counts: tuple[float, int, int]) -> list[dict[str, Any]]:
    return [{"t": t, "desired": d, "ready": r} for t, d, r in counts]


# 3 replicas, out to 6 by t = 40, back in to 3 from t = 55 (the 5 s sample before: t = 50).
SCALED = samples(
    (0, 3, 3), (10, 3, 3), (20, 5, 3), (30, 6, 5), (40, 6, 6), (50, 6, 6), (55, 4, 4), (59, 3, 3)
)


def run_with(replicas: list[dict[str, Any]], failed_at: list[float], plan: str = "scale") -> dict:
    rows = [[i * 0.1, 5.0, "w", 1, 200, "a", "/x"] for i in range(600)]
    rows += [[t, 5.0, "w", 0, 503, "", "/x"] for t in failed_at]
    rows.sort(key=lambda row: row[0])
    record = synthetic_run(rows, [], max_error_rate=0.05)
    record["params"]["chaos_plan"] = plan
    record["replicas"] = replicas
    return record


def test_the_ramp_is_a_quarter_then_all_then_an_eighth_of_the_users() -> None:
    at = [scaling.users_at(t, 600, 40) for t in (0, 47, 48, 299, 300, 599, 600)]
    assert at == [10, 10, 40, 40, 5, 5, None]
    assert scaling.users_at(0, 600, 4) == 2  # never fewer than 2


def test_a_scale_out_and_in_with_no_failure_passes() -> None:
    summary = analysis.summarize(run_with(SCALED, failed_at=[]))
    figures = summary["scaling"]
    assert (figures["peak_desired"], figures["peak_ready"], figures["peak_at_s"]) == (6, 6, 30)
    assert figures["first_ready_at_target_s"] == 30
    assert figures["scale_in_from_s"] == 50
    assert summary["verdict"]["pass"], summary["verdict"]["reasons"]


def test_a_request_failed_during_the_scale_in_fails_the_run() -> None:
    # 1 failure in 601 requests: far under the error threshold, yet a pod leaving failed it.
    summary = analysis.summarize(run_with(SCALED, failed_at=[52.0]))
    assert summary["scaling"]["failed_during_scale_in"] == 1
    assert summary["scaling"]["failed_during_scale_in_by_status"] == {"503 (proxy)": 1}
    assert summary["verdict"]["reasons"] == ["1 requests failed during the scale-in"]
    # Before the scale-in began, the same failure is the plain error rate's business.
    assert analysis.summarize(run_with(SCALED, failed_at=[45.0]))["verdict"]["pass"]


@pytest.mark.parametrize(
    ("replicas", "reason"),
    [
        (samples((0, 3, 3), (30, 4, 4), (55, 3, 3)), "the app never had 5 ready replicas"),
        (samples((0, 3, 3), (30, 6, 6), (55, 6, 6)), "never scaled back in from 6"),
        ([], "no app replica counts were sampled"),
    ],
)
def test_a_scale_run_that_did_not_scale_fails(replicas: list[dict], reason: str) -> None:
    summary = analysis.summarize(run_with(replicas, failed_at=[]))
    assert any(reason in r for r in summary["verdict"]["reasons"]), summary["verdict"]
    # The same counts in another plan are figures only.
    assert analysis.summarize(run_with(replicas, failed_at=[], plan="standard"))["verdict"]["pass"]


def test_the_timeline_and_page_show_replicas_over_time() -> None:
    summary = analysis.summarize(run_with(SCALED, failed_at=[]))
    counts = summary["timeline"]["app_replicas"]
    assert counts["desired"][:21] == [3] * 20 + [5]
    assert counts["ready"][59] == 3 and len(counts["ready"]) == 60
    svg = charts.timeline_svg(summary)
    assert "App replicas: desired dashed, ready solid" in svg
    page = report_page.index_html(summary, svg)
    assert "peak 6/6 at t = 30 s" in page and "scale-in from t = 50 s: 0 failed" in page
    # Without samples, no such panel.
    plain = analysis.summarize(run_with([], failed_at=[], plan="standard"))
    assert "App replicas" not in charts.timeline_svg(plain)


class Counting(ChaosBackend):
    """Only what the sampler calls; the other actions are never reached."""

    def __init__(self, counts: list[Any]) -> None:
        self.counts = counts

    def app_replicas(self) -> tuple[int, int] | None:
        value = self.counts.pop(0)
        if isinstance(value, Exception):
            raise value
        return value

    kill_app = kill_redis_master = recreate_redis_master_with_new_ip = master_node = None  # type: ignore[assignment]
    lose_node = drain_node = restore_node = upgrade = None  # type: ignore[assignment]


def test_the_sampler_records_until_its_deadline_and_survives_a_failed_sample() -> None:
    run = RunState(started=1000.0)
    clock = [1000.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    backend = Counting([(3, 3), RuntimeError("apiserver away"), (5, 4), (5, 5), (9, 9)])
    import loadtest.chaos_plan as module

    real_time = module.time.time
    module.time.time = lambda: clock[0]  # type: ignore[assignment]
    try:
        chaos_plan.watch_replicas(backend, run, seconds=20, sleep=sleep)
    finally:
        module.time.time = real_time  # type: ignore[assignment]
    assert [(d, r) for _, d, r in run.replicas] == [(3, 3), (5, 4), (5, 5)]
    assert backend.counts == [(9, 9)]  # 20 s at one sample per 5 s: 4 samples, 1 failed


def test_a_request_failed_during_a_rolling_restart_fails_the_rollouts_plan() -> None:
    rows = [[i * 0.1, 5.0, "w", 1, 200, "a", "/x"] for i in range(600)]
    rows.append([31.0, 5.0, "w", 0, 502, "", "/x"])
    rows.sort(key=lambda row: row[0])
    record = synthetic_run(rows, [("restart_app", 30.0, 40.0)], max_error_rate=0.05)
    record["params"]["chaos_plan"] = "rollouts"
    assert analysis.summarize(record)["verdict"]["reasons"] == [
        "1 requests failed during the app's rolling restarts"
    ]
    record["params"]["chaos_plan"] = "upgrade"  # elsewhere, one 502 in 601 is under threshold
    assert analysis.summarize(record)["verdict"]["pass"]
