"""Runs functions of our shell scripts with fake docker, kind, kubectl, uname... on the PATH.

Each fake is a small bash script; every call is appended to a log (`name arg arg...`) so a test
can read what the script would have run on a real machine.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[str]

    def called(self, prefix: str) -> list[str]:
        return [call for call in self.calls if call.startswith(prefix)]


class FakeCommands:
    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.bin.mkdir()
        self.log = directory / "calls.log"
        self.log.touch()

    def add(self, name: str, body: str = "exit 0") -> None:
        """A fake `name` whose behaviour is `body` (bash; "$@" are its arguments)."""
        script = self.bin / name
        script.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "$FAKE_CALLS"\n{body}\n')
        script.chmod(0o755)

    def run(self, script: str, snippet: str, env: dict[str, str] | None = None) -> Run:
        """Sources scripts/<script> (which then runs nothing) and runs `snippet` after it."""
        return self._bash(["-c", f"source scripts/{script}\n{snippet}"], env)

    def execute(self, script: str, *args: str, env: dict[str, str] | None = None) -> Run:
        """Runs scripts/<script> as a program."""
        return self._bash([f"scripts/{script}", *args], env)

    def _bash(self, arguments: list[str], env: dict[str, str] | None) -> Run:
        self.log.write_text("")
        environment = {
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "HOME": os.environ.get("HOME", "/tmp"),
            "TMPDIR": str(self.log.parent),
            "FAKE_CALLS": str(self.log),
            **(env or {}),
        }
        result = subprocess.run(
            ["bash", *arguments],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        calls = self.log.read_text().splitlines()
        return Run(result.returncode, result.stdout, result.stderr, calls)
