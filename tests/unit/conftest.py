from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests read settings from a clean slate, whatever the shell exported."""
    for name in list(os.environ):
        if name.startswith("SESSIONFLEET_"):
            monkeypatch.delenv(name)
