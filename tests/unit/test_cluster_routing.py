"""How the cluster connection reads the cluster: which key a command is routed by, the map
`CLUSTER SHARDS` gives, and the redirections' replies."""

from __future__ import annotations

import hiredis
from redis import exceptions as rx

from app.sessions import pipe
from app.sessions.cluster import key_of, parse_shards, slot_of


def test_commands_are_routed_by_their_key() -> None:
    assert key_of(("EVALSHA", "abc", 1, "sf:{k}:s", "arg")) == "sf:{k}:s"
    assert key_of(("EVAL", "return 1", 0)) is None
    assert key_of(("HMGET", "sf:{k}:s", "#c")) == "sf:{k}:s"
    assert key_of(("SCAN", 0, "MATCH", "x")) is None
    assert key_of(("ROLE",)) is None


def test_one_sessions_keys_share_a_slot_and_users_spread() -> None:
    assert slot_of("sf:{abc}:s") == slot_of("sf:{abc}:other") == slot_of("abc")
    assert len({slot_of(f"sf:{{u:user-{i:04d}}}:idx") for i in range(50)}) > 40


def _node(port: int, role: bytes, health: bytes, endpoint: bytes = b"10.0.0.1") -> list[object]:
    fields = {"id": b"x", "port": port, "tls-port": port + 1, "ip": b"10.0.0.1"}
    fields |= {"endpoint": endpoint, "role": role, "health": health}
    return [x for name, value in fields.items() for x in (name.encode(), value)]


def test_the_map_names_masters_by_endpoint_and_counts_replicas_not_failed() -> None:
    reply = [
        [
            b"slots",
            [0, 100, 200, 300],
            b"nodes",
            [
                _node(7000, b"master", b"online", b"redis-0.redis"),
                _node(7001, b"replica", b"online"),
                _node(7002, b"replica", b"loading"),  # syncing: may be promoted all the same
                _node(7003, b"replica", b"failed"),
            ],
        ],
        [b"slots", [], b"nodes", [_node(7004, b"master", b"online")]],  # no slots: no shard
        [
            b"slots",
            [101, 199],
            b"nodes",
            [
                _node(7005, b"master", b"failed"),  # failed, its replica not promoted yet
                _node(7006, b"replica", b"online"),
            ],
        ],
    ]
    [shard] = parse_shards(reply)
    assert shard.master == ("redis-0.redis", 7000)
    assert shard.slots == ((0, 100), (200, 300))
    assert shard.live_replicas == 2
    assert parse_shards(reply, tls=True)[0].master == ("redis-0.redis", 7001)
    unknown = [[b"slots", [0, 1], b"nodes", [_node(7000, b"master", b"online", b"?")]]]
    assert parse_shards(unknown)[0].master == ("10.0.0.1", 7000)  # no endpoint known: its IP


def test_redirections_parse_as_redis_py_reads_them() -> None:
    moved = pipe.error_of(hiredis.ReplyError("MOVED 3999 redis-1.redis:6379"))
    assert isinstance(moved, rx.MovedError)
    assert (moved.slot_id, moved.node_addr) == (3999, ("redis-1.redis", 6379))
    ask = pipe.error_of(hiredis.ReplyError("ASK 12 127.0.0.1:7002"))
    assert isinstance(ask, rx.AskError) and ask.node_addr == ("127.0.0.1", 7002)
