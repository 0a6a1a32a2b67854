"""What each simulated user expects of its session, and the anomaly classes it reports.

Pure logic, no Locust: the user classes feed it what each request returned, and it answers
with an `Anomaly` or None. A write the client never heard back about (503, timeout, dropped
connection) may or may not have been applied, so the models keep a range of acceptable states
instead of one; every complete answer from the server narrows it to one again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A session that vanished or data that went back in time or was made up: the run fails.
FATAL = ("session_lost", "lost_update", "stale_read", "corrupted")
# Plain errors: counted, and gated by configurable thresholds.
NON_FATAL = ("unavailable", "unexpected_status", "timeout")
TRANSIENT_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str
    detail: str

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Reply:
    """What one request returned: status None means no answer (timeout or transport error)."""

    status: int | None
    body: Any = None
    served_by: str = ""
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def uncertain(self) -> bool:
        """The request may or may not have taken effect."""
        return self.status is None or self.status in TRANSIENT_STATUSES


def status_anomaly(
    reply: Reply, *, logged_in: bool, expected: tuple[int, ...] = ()
) -> Anomaly | None:
    """Anomaly for a non-success status (None when the status is fine or expected)."""
    if reply.ok or reply.status in expected:
        return None
    if reply.status is None:
        return Anomaly("timeout" if reply.timed_out else "unavailable", "no answer")
    if reply.status == 401 and logged_in:
        return Anomaly("session_lost", "401 after a successful login")
    if reply.status in TRANSIENT_STATUSES:
        # No X-Served-By: no replica answered, the proxy did (a pod gone or stopping).
        source = "" if reply.served_by else " from the proxy"
        return Anomaly("unavailable", f"HTTP {reply.status}{source}")
    return Anomaly("unexpected_status", f"HTTP {reply.status}")


@dataclass
class CounterModel:
    """POST /counter must answer exactly the previous value + 1 (+ unanswered increments)."""

    acked: int = 0
    unanswered: int = 0

    def on_increment(self, reply: Reply) -> Anomaly | None:
        if not reply.ok:
            if reply.uncertain:
                self.unanswered += 1
            return None
        value = reply.body.get("counter") if isinstance(reply.body, dict) else None
        if not isinstance(value, int):
            return Anomaly("corrupted", f"counter answer {reply.body!r}")
        low, high = self.acked + 1, self.acked + 1 + self.unanswered
        self.acked, self.unanswered = value, 0
        if value < low:
            return Anomaly("lost_update", f"counter {value}, expected >= {low}")
        if value > high:
            return Anomaly("corrupted", f"counter {value}, expected <= {high}")
        return None


@dataclass
class _Range:
    low: int = 0
    high: int = 0


@dataclass
class CartModel:
    """The cart a user should see: per item, the range of quantities its answered and
    unanswered changes allow."""

    items: dict[str, _Range] = field(default_factory=dict)

    def expected(self) -> dict[str, tuple[int, int]]:
        return {k: (r.low, r.high) for k, r in self.items.items() if r.high > 0}

    def added(self, item: str, qty: int, reply: Reply, *, exclusive: bool = True) -> Anomaly | None:
        """An add answered (or not). `exclusive`: no other request of this session was in
        flight, so the answer is the whole truth and must match exactly."""
        bounds = self.items.setdefault(item, _Range())
        if reply.ok:
            bounds.low += qty
            bounds.high += qty
            return self._check_answer(reply, "lost_update", only=None if exclusive else item)
        if reply.uncertain:
            bounds.high += qty
        return None

    def removed(self, item: str, reply: Reply) -> Anomaly | None:
        bounds = self.items.setdefault(item, _Range())
        if reply.ok:
            bounds.low = bounds.high = 0
            return self._check_answer(reply, "lost_update")
        if reply.uncertain:
            bounds.low = 0
        return None

    def read(self, reply: Reply) -> Anomaly | None:
        if not reply.ok:
            return None
        return self._check_answer(reply, "stale_read")

    def reset(self) -> None:
        self.items.clear()

    def logged_in_again(self, *, old_session_may_live: bool) -> None:
        """A login keeps the data of the session it starts from. After a logout that was
        never confirmed that may be the old session: its cart, or nothing if the logout went
        through after all."""
        if old_session_may_live:
            self.maybe_emptied()
        else:
            self.reset()

    def maybe_emptied(self) -> None:
        """A checkout went unanswered: the cart is either unchanged or empty."""
        for bounds in self.items.values():
            bounds.low = 0

    def _check_answer(self, reply: Reply, too_low: str, only: str | None = None) -> Anomaly | None:
        """Check the cart in an answer: the whole cart (then it becomes the one expected
        state), or with `only`, just that item's lower bound (other requests in flight)."""
        seen = reply.body.get("items") if isinstance(reply.body, dict) else None
        if not isinstance(seen, dict):
            return Anomaly("corrupted", f"cart answer {reply.body!r}")
        anomaly = None
        for name in sorted([only] if only else set(seen) | set(self.items)):
            qty = seen.get(name, 0)
            bounds = self.items.get(name, _Range())
            if qty < bounds.low:
                anomaly = Anomaly(too_low, f"{name}: {qty} in cart, expected >= {bounds.low}")
            elif only is None and qty > bounds.high:
                anomaly = Anomaly("corrupted", f"{name}: {qty} in cart, expected <= {bounds.high}")
            if anomaly:
                break
        if only is None:
            # The answer is the truth from now on: one anomaly is reported once, not on every
            # later read.
            self.items = {name: _Range(qty, qty) for name, qty in seen.items()}
        return anomaly


@dataclass
class Hops:
    """Which replicas served one user, and how often consecutive requests changed replica."""

    replicas: set[str] = field(default_factory=set)
    requests: int = 0
    changes: int = 0
    _last: str = ""

    def saw(self, served_by: str) -> None:
        if not served_by:
            return
        self.requests += 1
        if self._last and served_by != self._last:
            self.changes += 1
        self._last = served_by
        self.replicas.add(served_by)
