"""The `scale` plan's figures, from the app's replica counts sampled during the run: how far
the HorizontalPodAutoscaler scaled the app out, whether it scaled back in, and how many
requests failed while replicas were being removed (a pod leaving must fail none)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

# The mark: from the chart's 3 replicas to at least 5 under the ramp.
SCALE_OUT_TO = 5
# The ramp (loadtest/scale_shape.py): (end of the phase as a share of the run, share of --users).
PHASES = ((0.08, 0.25), (0.5, 1.0), (1.0, 0.125))


def users_at(elapsed: float, run_seconds: float, users: int) -> int | None:
    """The user count `elapsed` seconds into the run; None once it is over."""
    for end, share in PHASES:
        if elapsed < end * run_seconds:
            return max(2, round(users * share))
    return None


class _Request(Protocol):
    start: float
    ok: bool
    status: int
    replica: str


def figures(samples: list[dict[str, Any]], requests: Sequence[_Request]) -> dict[str, Any] | None:
    """None when no replica count was sampled (backends other than Kubernetes)."""
    if not samples:
        return None
    peak_desired = max(s["desired"] for s in samples)
    peak_at = next(s["t"] for s in samples if s["desired"] == peak_desired)
    after_peak = [s for s in samples if s["t"] > peak_at]
    scale_in = next((s for s in after_peak if s["desired"] < peak_desired), None)
    # From the sample before the first lower count: the change happened in between.
    window_start = None
    if scale_in is not None:
        window_start = max(s["t"] for s in samples if s["t"] < scale_in["t"])
    failed = [
        r for r in requests if window_start is not None and r.start >= window_start and not r.ok
    ]
    return {
        "first": samples[0],
        "last": samples[-1],
        "peak_desired": peak_desired,
        "peak_ready": max(s["ready"] for s in samples),
        "peak_at_s": peak_at,
        "first_ready_at_target_s": next(
            (s["t"] for s in samples if s["ready"] >= SCALE_OUT_TO), None
        ),
        "scale_in_from_s": window_start,
        "failed_during_scale_in": len(failed),
        "failed_during_scale_in_by_status": _by_status(failed),
    }


def _by_status(failed: Sequence[_Request]) -> dict[str, int]:
    counts = Counter(
        f"{r.status or 'no answer'}" + ("" if r.replica or not r.status else " (proxy)")
        for r in failed
    )
    return dict(sorted(counts.items()))


def reasons(scaling: dict[str, Any] | None) -> list[str]:
    """Why a `scale` run fails, on top of the usual verdict."""
    if scaling is None:
        return ["no app replica counts were sampled (the scale plan needs CHAOS=kubernetes)"]
    found = []
    if scaling["peak_ready"] < SCALE_OUT_TO:
        found.append(
            f"the app never had {SCALE_OUT_TO} ready replicas (at most {scaling['peak_ready']})"
        )
    if scaling["scale_in_from_s"] is None:
        found.append(f"the app never scaled back in from {scaling['peak_desired']} replicas")
    if scaling["failed_during_scale_in"]:
        found.append(f"{scaling['failed_during_scale_in']} requests failed during the scale-in")
    return found


def per_second(samples: list[dict[str, Any]], key: str, seconds: int) -> list[int | None]:
    """The sampled count in force at each second (None before the first sample)."""
    out: list[int | None] = []
    i, value = 0, None
    for s in range(seconds):
        while i < len(samples) and samples[i]["t"] <= s:
            value = samples[i][key]
            i += 1
        out.append(value)
    return out
