"""The session library has one public surface: nothing outside it imports its modules."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            dots = "." * node.level
            names.append(f"{dots}{node.module or ''}")
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_the_app_uses_only_what_the_session_library_exports() -> None:
    reaching_in = {
        str(path.relative_to(APP)): name
        for path in APP.rglob("*.py")
        if "sessions" not in path.relative_to(APP).parts
        for name in _imports(path)
        if "sessions." in name  # app.sessions.x, .sessions.x, ..sessions.x
    }
    assert reaching_in == {}


def test_the_session_library_imports_nothing_of_the_app() -> None:
    outward = {
        str(path.relative_to(APP)): name
        for path in (APP / "sessions").rglob("*.py")
        for name in _imports(path)
        if name.startswith(("..", "app.")) and not name.startswith("app.sessions")
    }
    assert outward == {}
