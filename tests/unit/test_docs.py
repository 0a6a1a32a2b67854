from __future__ import annotations

from pathlib import Path

from scripts.settings_doc import render

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_doc_lists_every_setting() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "run: python scripts/settings_doc.py > docs/configuration.md"
    )
