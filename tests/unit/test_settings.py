from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_defaults_are_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.cookie_secure is True
    assert not settings.uses_redis
    assert settings.wait_replicas == 0


def test_sentinels_parse_and_imply_one_replica_ack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONFLEET_REDIS_SENTINELS", "s1:26379, s2:26380")
    settings = Settings()
    assert settings.sentinel_addresses == [("s1", 26379), ("s2", 26380)]
    assert settings.wait_replicas == 1 and settings.uses_redis


@pytest.mark.parametrize("value", ["s1", "s1:port", ":26379"])
def test_bad_sentinel_list_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SESSIONFLEET_REDIS_SENTINELS", value)
    with pytest.raises(ValidationError):
        Settings()


def test_secrets_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    monkeypatch.setenv("SESSIONFLEET_REDIS_PASSWORD_FILE", str(tmp_path / "pw"))
    settings = Settings()
    assert settings.redis_password is not None
    assert settings.redis_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_loadtest_users_need_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONFLEET_LOADTEST_USERS", "10")
    with pytest.raises(ValidationError, match="LOADTEST_PASSWORD"):
        Settings()


def test_lifetime_shorter_than_idle_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(session_idle_timeout=100, session_absolute_lifetime=50)
