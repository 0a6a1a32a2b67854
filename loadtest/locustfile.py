"""Locust scenarios that check session consistency while pods hop, die and fail over.

    locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8080 -u 30 -r 10 -t 3m \\
        --chaos local --report-dir reports/run

Users log in as user-NNNN with the password in SESSIONFLEET_LOADTEST_PASSWORD (or the file in
SESSIONFLEET_LOADTEST_PASSWORD_FILE). Each keeps the state it expects (loadtest/consistency.py);
every anomaly is a Locust failure named after its class, and the run exits non-zero when any
session was lost or corrupted, or plain errors exceed --max-error-rate.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import requests
from gevent.pool import Group
from locust import HttpUser, between, events, task
from locust.env import Environment

from loadtest import analysis, chaos_plan, report, run_params
from loadtest.chaos.base import ChaosBackend
from loadtest.consistency import Anomaly, CartModel, CounterModel, Hops, Reply, status_anomaly
from loadtest.run_state import RUN

_user_numbers = itertools.count(1)
REQUEST_TIMEOUT = 10.0


def _next_username() -> str:
    """user-0001, user-0002, ...: one account per simulated user, wrapping at the user count."""
    count = int(os.environ.get("SESSIONFLEET_LOADTEST_USERS", "1000"))
    return f"user-{(next(_user_numbers) - 1) % count + 1:04d}"


def _password() -> str:
    path = os.environ.get("SESSIONFLEET_LOADTEST_PASSWORD_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ["SESSIONFLEET_LOADTEST_PASSWORD"]


class SessionUser(HttpUser):
    """A browser-like user: one cookie jar, one trace per journey, one expected session."""

    abstract = True
    wait_time = between(0.2, 0.8)

    def on_start(self) -> None:
        self.username = _next_username()
        self.password = _password()
        self.hops = Hops()
        RUN.hops.append(self.hops)
        self.logged_in = False
        # One W3C trace per simulated user: its journey across replicas is one trace.
        self.trace_id = secrets.token_hex(16)
        self.log_in()

    # --- plumbing -----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        expected: tuple[int, ...] = (),
        check: Callable[[Reply], Any] | None = None,
        **kwargs: Any,
    ) -> Reply:
        """One request; `check(reply)` may return an Anomaly. Anomalies are Locust failures."""
        headers = {
            "traceparent": f"00-{self.trace_id}-{secrets.token_hex(8)}-01",
            **kwargs.pop("headers", {}),
        }
        with self.client.request(
            method,
            path,
            name=name or path,
            catch_response=True,
            headers=headers,
            timeout=REQUEST_TIMEOUT,
            **kwargs,
        ) as response:
            timed_out = isinstance(response.error, requests.Timeout)
            try:
                body = response.json() if response.content else None
            except ValueError:
                body = None
            reply = Reply(
                response.status_code or None,
                body,
                response.headers.get("x-served-by", ""),
                timed_out,
            )
            self.hops.saw(reply.served_by)
            # The model sees every reply, unanswered ones too: they widen what it accepts.
            model_anomaly = check(reply) if check is not None else None
            anomaly = status_anomaly(reply, logged_in=self.logged_in, expected=expected)
            anomaly = anomaly or model_anomaly
            if anomaly is not None:
                response.failure(str(anomaly))
                RUN.anomaly(self.username, name or path, anomaly)
                if anomaly.kind == "session_lost":
                    self.logged_in = False
            elif reply.status in expected:
                response.success()
        return reply

    def log_in(self) -> None:
        for _ in range(10):  # bounded: during a failover a login may get 503 + Retry-After
            reply = self.call(
                "POST", "/login", json={"username": self.username, "password": self.password}
            )
            if reply.ok:
                self.logged_in = True
                RUN.logins += 1
                self.on_login()
                return
            gevent.sleep(1.0)

    def on_login(self) -> None:
        """A new session starts empty: reset what the user expects."""

    def ensure_logged_in(self) -> bool:
        if not self.logged_in:
            self.log_in()
        return self.logged_in


class ShopperUser(SessionUser):
    """login → browse → add/remove cart items → check the cart → sometimes check out → logout."""

    weight = 3
    SKUS = tuple(f"sku-{i}" for i in range(8))

    def on_start(self) -> None:
        self.cart = CartModel()
        self.logout_unconfirmed = False
        super().on_start()

    def on_login(self) -> None:
        self.cart.logged_in_again(old_session_may_live=self.logout_unconfirmed)
        self.logout_unconfirmed = False

    @task
    def journey(self) -> None:
        if not self.ensure_logged_in():
            return
        self.call("GET", "/me", check=self._is_me)
        self.call("GET", "/cart", check=self.cart.read)
        for _ in range(random.randint(1, 3)):
            item, qty = random.choice(self.SKUS), random.randint(1, 3)
            self.call(
                "POST",
                "/cart/items",
                name="/cart/items",
                json={"item_id": item, "qty": qty},
                check=lambda r, i=item, q=qty: self.cart.added(i, q, r),
            )
        self.call("GET", "/cart", check=self.cart.read)
        present = [k for k, (low, _) in self.cart.expected().items() if low > 0]
        if present and random.random() < 0.5:
            item = random.choice(present)
            self.call(
                "DELETE",
                f"/cart/items/{item}",
                name="/cart/items/[id]",
                check=lambda r, i=item: self.cart.removed(i, r),
            )
        if present and random.random() < 0.3:
            self._checkout()
        if random.random() < 0.2:
            logout = self.call("POST", "/logout", expected=(204,))
            self.logout_unconfirmed = logout.status != 204
            self.logged_in = False
            self.call("GET", "/me", name="/me (after logout)", expected=(401,))

    def _is_me(self, reply: Reply) -> Any:
        if reply.ok and (
            not isinstance(reply.body, dict) or reply.body.get("user") != self.username
        ):
            return Anomaly("corrupted", f"/me answered {reply.body!r} for {self.username}")
        return None

    def _checkout(self) -> None:
        key = f"order-{secrets.token_hex(8)}"
        first = self.call(
            "POST", "/checkout", headers={"Idempotency-Key": key}, expected=(201, 409)
        )
        if first.uncertain:
            self.cart.maybe_emptied()  # it may have gone through: the next read decides
            return
        if first.status != 201:
            return
        self.cart.reset()
        # A double submission, as from a second click: must return the first order.
        self.call(
            "POST",
            "/checkout",
            name="/checkout (repeat)",
            headers={"Idempotency-Key": key},
            expected=(201,),
            check=lambda r: (
                None
                if not r.ok or r.body == first.body
                else Anomaly("corrupted", "repeated checkout made a second order")
            ),
        )


class CounterUser(SessionUser):
    """login → repeated POST /counter: each answer must be exactly the previous + 1."""

    weight = 2

    def on_login(self) -> None:
        self.counter = CounterModel()

    @task(5)
    def increment(self) -> None:
        if self.ensure_logged_in():
            self.call("POST", "/counter", check=self.counter.on_increment)

    @task(1)
    def whoami(self) -> None:
        if self.ensure_logged_in():
            self.call("GET", "/me")


class TabsUser(SessionUser):
    """Several requests of one session at once, like browser tabs, each adding to the cart;
    the cart read afterwards must hold every acknowledged add."""

    weight = 1
    TABS = 4

    def on_login(self) -> None:
        self.cart = CartModel()
        self.batches = 0

    @task
    def tabs(self) -> None:
        if not self.ensure_logged_in():
            return
        group = Group()
        for tab in range(self.TABS):
            item = f"tab-{tab}"
            group.spawn(
                self.call,
                "POST",
                "/cart/items",
                name="/cart/items (tabs)",
                json={"item_id": item, "qty": 1},
                check=lambda r, i=item: self.cart.added(i, 1, r, exclusive=False),
            )
        group.join(timeout=REQUEST_TIMEOUT * 2)
        self.call("GET", "/cart", name="/cart (after tabs)", check=self.cart.read)
        self.batches += 1
        if self.batches % 100 == 0:  # stay far from the per-item quantity cap
            for tab in range(self.TABS):
                item = f"tab-{tab}"
                self.call(
                    "DELETE",
                    f"/cart/items/{item}",
                    name="/cart/items/[id]",
                    expected=(404,),
                    check=lambda r, i=item: self.cart.removed(i, r),
                )


# --- command line, chaos, report ---------------------------------------------------------------

CHAOS: list[ChaosBackend] = []  # the run's backend, for the clean-up on the way out
CHAOS_RUNS: list[Any] = []  # the greenlet running the plan
WATCHERS: list[Any] = []  # the greenlet sampling the app's replicas
# How long the end of a run waits for an action still under way (a helm upgrade, a node
# coming back): cut short, it would vanish from the record and could leave Helm mid-release.
UNFINISHED_ACTION_WAIT_S = 600


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--chaos",
        choices=["none", "local", "kubernetes"],
        default="none",
        help="chaos backend run during the test",
    )
    parser.add_argument(
        "--chaos-plan", default="standard", help="chaos schedule (see loadtest/chaos_plan.py)"
    )
    parser.add_argument("--chaos-namespace", default="sessionfleet", help="Kubernetes namespace")
    parser.add_argument("--chaos-release", default="sf", help="Helm release name")
    parser.add_argument("--chaos-project", default="sessionfleet-local", help="compose project")
    parser.add_argument(
        "--chaos-context",
        default=os.environ.get("KUBE_CONTEXT", ""),
        help="kube context the Kubernetes backend acts on (required: never the current one)",
    )
    parser.add_argument(
        "--node-loss-command",
        default="",
        help="shell command with {node} that really stops a node (else kind's, or emulated)",
    )
    parser.add_argument(
        "--node-restore-command", default="", help="shell command with {node} that brings it back"
    )
    parser.add_argument(
        "--upgrade-image-tag", default="", help="app image tag the `upgrade` plan moves to"
    )
    parser.add_argument(
        "--spare-nodes", default="", help="comma-separated nodes a node loss never takes"
    )
    parser.add_argument(
        "--report-dir", default="", help="write summary.json, timeline.svg, index.html here"
    )
    parser.add_argument(
        "--max-error-rate",
        type=float,
        default=0.05,
        help="fail the run when plain errors exceed this share of requests",
    )


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response: Any,
    exception: Any,
    start_time: float,
    **_: Any,
) -> None:
    status = getattr(response, "status_code", 0) or 0
    replica = response.headers.get("x-served-by", "") if status else ""
    RUN.request(request_type, name, start_time, response_time, exception is None, status, replica)


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    RUN.started = time.time()
    RUN.params = run_params.describe(environment)
    if options is None or options.chaos == "none":
        return
    backend = chaos_plan.backend(options)
    CHAOS.append(backend)
    plan = chaos_plan.plan(options.chaos_plan, float(options.run_time or 180))
    CHAOS_RUNS.append(gevent.spawn(chaos_plan.execute, plan, backend, RUN))
    run_seconds = float(options.run_time or 180) + float(options.stop_timeout or 0)
    WATCHERS.append(gevent.spawn(chaos_plan.watch_replicas, backend, RUN, run_seconds))


@events.quitting.add_listener
def _verdict(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    for watcher in WATCHERS:
        watcher.kill()
    for greenlet in CHAOS_RUNS:  # the load ended: let an action under way finish (bounded)
        started = time.time()
        greenlet.join(timeout=UNFINISHED_ACTION_WAIT_S)
        if not greenlet.dead:
            greenlet.kill()
            outcome = f"still under way {UNFINISHED_ACTION_WAIT_S} s after the load ended"
            RUN.chaos_event("unfinished", outcome, False, started=started, ended=time.time())
    for backend in CHAOS:  # the run may end (time up, Ctrl-C) with a fault still in place
        for undone in backend.cleanup():
            print(f"[chaos clean-up] {undone}", flush=True)
    record = RUN.record()
    summary = analysis.summarize(record)
    if options is not None and options.report_dir:
        report.write(Path(options.report_dir), summary, record)
    report.print_verdict(summary)
    # The verdict decides the exit code, not Locust's "any failure = 1": plain errors under
    # chaos are expected up to --max-error-rate.
    environment.process_exit_code = 0 if summary["verdict"]["pass"] else 1
