from __future__ import annotations

import pytest

from app.sessions.cookies import CookiePolicy, is_well_formed, new_session_id, store_key_of


def test_new_ids_are_43_url_safe_chars_and_distinct() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_well_formed(i) for i in ids)


def test_store_key_is_a_digest_not_the_id() -> None:
    sid = new_session_id()
    key = store_key_of(sid)
    assert len(key) == 32 and int(key, 16) >= 0 and sid not in key
    assert store_key_of(sid) == key != store_key_of(new_session_id())


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("other=1", None),
        ("__Host-sid=" + "A" * 43, "A" * 43),
        ("a=b; __Host-sid=" + "A" * 43 + "; c=d", "A" * 43),
        ('__Host-sid="' + "A" * 43 + '"', "A" * 43),
        ("__Host-sid=" + "A" * 42, None),
        ("__Host-sid=" + "A" * 42 + "*", None),
        ("sid=" + "A" * 43, None),  # the unprefixed name is not ours when Secure
        ("__Host-sid=" + "A" * 43 + "; " + "x" * 9000, None),  # oversized header
    ],
)
def test_read_accepts_only_well_formed_ids(header: str | None, expected: str | None) -> None:
    assert CookiePolicy(secure=True).read(header) == expected


def test_secure_cookie_flags() -> None:
    header = CookiePolicy(name="sid", secure=True).set_header("A" * 43, 3600)
    assert header == f"__Host-sid={'A' * 43}; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax; Secure"


def test_plain_http_cookie_flags() -> None:
    header = CookiePolicy(name="sid", secure=False).clear_header()
    assert header == "sid=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
