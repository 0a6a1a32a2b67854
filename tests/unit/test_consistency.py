"""The consistency checker on synthetic answers: every anomaly class it must catch."""

from __future__ import annotations

from loadtest.consistency import CartModel, CounterModel, Hops, Reply, status_anomaly


def counter(value: int) -> Reply:
    return Reply(200, {"counter": value})


def cart(**items: int) -> Reply:
    return Reply(200, {"items": items, "count": sum(items.values())})


def test_counter_sequence_is_clean() -> None:
    model = CounterModel()
    assert [model.on_increment(counter(v)) for v in (1, 2, 3)] == [None, None, None]


def test_counter_going_back_is_a_lost_update() -> None:
    model = CounterModel()
    model.on_increment(counter(1))
    model.on_increment(counter(2))
    anomaly = model.on_increment(counter(2))  # the acknowledged 2 was lost, 2 again
    assert anomaly is not None and anomaly.kind == "lost_update" and anomaly.fatal


def test_counter_jumping_ahead_is_corruption() -> None:
    model = CounterModel()
    model.on_increment(counter(1))
    anomaly = model.on_increment(counter(5))
    assert anomaly is not None and anomaly.kind == "corrupted"


def test_unanswered_increments_may_or_may_not_count() -> None:
    model = CounterModel()
    model.on_increment(counter(1))
    model.on_increment(Reply(503))
    model.on_increment(Reply(None, timed_out=True))
    assert model.on_increment(counter(4)) is None  # both applied
    model.on_increment(Reply(503))
    assert model.on_increment(counter(5)) is None  # it did not apply


def test_garbled_counter_is_corruption() -> None:
    anomaly = CounterModel().on_increment(Reply(200, {"counter": "x"}))
    assert anomaly is not None and anomaly.kind == "corrupted"


def test_401_after_login_is_a_lost_session() -> None:
    anomaly = status_anomaly(Reply(401), logged_in=True)
    assert anomaly is not None and anomaly.kind == "session_lost" and anomaly.fatal
    assert status_anomaly(Reply(401), logged_in=True, expected=(401,)) is None  # after logout


def test_plain_errors_are_classified_but_not_fatal() -> None:
    cases = {
        Reply(503): "unavailable",
        Reply(502): "unavailable",
        Reply(None): "unavailable",
        Reply(None, timed_out=True): "timeout",
        Reply(500): "unexpected_status",
        Reply(409): "unexpected_status",
        Reply(401): "unexpected_status",  # before any login: not a lost session
    }
    for reply, kind in cases.items():
        anomaly = status_anomaly(reply, logged_in=False)
        assert anomaly is not None and anomaly.kind == kind and not anomaly.fatal, reply
    assert status_anomaly(Reply(200), logged_in=True) is None


def test_cart_reads_must_show_every_acknowledged_change() -> None:
    model = CartModel()
    assert model.added("a", 2, cart(a=2)) is None
    assert model.added("b", 1, cart(a=2, b=1)) is None
    assert model.read(cart(a=2, b=1)) is None
    anomaly = model.read(cart(a=2))
    assert anomaly is not None and anomaly.kind == "stale_read" and anomaly.fatal


def test_cart_write_answer_missing_earlier_item_is_lost_update() -> None:
    model = CartModel()
    model.added("a", 1, cart(a=1))
    anomaly = model.added("b", 1, cart(b=1))  # "a" vanished
    assert anomaly is not None and anomaly.kind == "lost_update"


def test_cart_item_appearing_from_nowhere_is_corruption() -> None:
    model = CartModel()
    model.added("a", 1, cart(a=1))
    anomaly = model.read(cart(a=1, z=3))
    assert anomaly is not None and anomaly.kind == "corrupted"


def test_cart_unanswered_add_may_appear() -> None:
    model = CartModel()
    model.added("a", 1, cart(a=1))
    model.added("b", 1, Reply(503))
    assert model.read(cart(a=1, b=1)) is None
    model.added("c", 1, Reply(None))
    assert model.read(cart(a=1, b=1)) is None  # "c" did not apply: also fine


def test_cart_removal_must_stick() -> None:
    model = CartModel()
    model.added("a", 1, cart(a=1))
    model.added("b", 1, cart(a=1, b=1))
    assert model.removed("a", cart(b=1)) is None
    anomaly = model.read(cart(a=1, b=1))
    assert anomaly is not None and anomaly.kind == "corrupted"  # a removed item came back


def test_concurrent_tabs_check_own_item_only() -> None:
    model = CartModel()
    # Two tabs in flight: each answer may or may not include the other tab's item yet.
    assert model.added("t1", 1, cart(t1=1), exclusive=False) is None
    assert model.added("t2", 1, cart(t2=1), exclusive=False) is None
    anomaly = model.read(cart(t2=1))  # the final read lost tab 1's acknowledged add
    assert anomaly is not None and anomaly.kind == "stale_read"


def test_hops_count_replica_changes() -> None:
    hops = Hops()
    for replica in ("a", "a", "b", "c", "c", ""):
        hops.saw(replica)
    assert hops.replicas == {"a", "b", "c"} and hops.requests == 5 and hops.changes == 2


def test_an_anomaly_is_reported_once_then_resynchronised() -> None:
    model = CartModel()
    model.added("a", 1, cart(a=1))
    assert model.read(cart(a=1, z=1)) is not None
    assert model.read(cart(a=1, z=1)) is None  # the same state again is not a new anomaly


def test_unanswered_checkout_may_have_emptied_the_cart() -> None:
    model = CartModel()
    model.added("a", 2, cart(a=2))
    model.maybe_emptied()
    assert model.read(cart()) is None
    model.added("a", 2, cart(a=2))
    model.maybe_emptied()
    assert model.read(cart(a=2)) is None


def test_login_after_unconfirmed_logout_may_keep_the_old_cart() -> None:
    # A login keeps the data of the session it starts from: after a logout that got 503 that
    # may still be the old, logged-in session.
    kept = CartModel()
    kept.added("a", 2, cart(a=2))
    kept.logged_in_again(old_session_may_live=True)
    assert kept.read(cart(a=2)) is None
    emptied = CartModel()
    emptied.added("a", 2, cart(a=2))
    emptied.logged_in_again(old_session_may_live=True)
    assert emptied.read(cart()) is None


def test_login_after_confirmed_logout_starts_empty() -> None:
    model = CartModel()
    model.added("a", 2, cart(a=2))
    model.logged_in_again(old_session_may_live=False)
    anomaly = model.read(cart(a=2))
    assert anomaly is not None and anomaly.kind == "corrupted"
