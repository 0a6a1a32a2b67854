"""A Helm release driven by the real Helm engine: the `helm` CLI where it is installed, else the
same engine as a Python library (helm-python-sdk). Always against an explicit kube context.

The library runs in a child process (`python -m loadtest.chaos.helm_sdk`) for two reasons: a
call blocks its whole process for minutes (inside Locust it would stop the load), and the
engine names its server-side-apply field manager after the process: the child is started as
`helm`, so objects it applies and objects the CLI applies have one manager and never conflict.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .base import ChaosError

CHART = Path(__file__).resolve().parents[2] / "helm" / "sessionfleet"
ROOT = CHART.parents[1]


class Helm:
    def __init__(self, *, context: str, namespace: str, release: str) -> None:
        if not context:
            raise ChaosError("no kube context given: refusing to act on whatever is current")
        self.context = context
        self.namespace = namespace
        self.release = release
        # HELM_BIN picks one CLI among several (Helm 3 beside Helm 4: make e2e-helm3).
        self.cli = shutil.which(os.environ.get("HELM_BIN", "helm"))

    @property
    def engine(self) -> str:
        if not self.cli:
            return "helm-python-sdk"
        version = subprocess.run(  # noqa: S603 (the helm binary)
            [self.cli, "version", "--short"], capture_output=True, text=True, timeout=30
        )
        return f"helm CLI {version.stdout.strip()}"

    def install(self, values: dict[str, Any], *, timeout_s: int = 600) -> None:
        """Install, or upgrade if the release exists; waits until every object is ready."""
        if self.cli:
            self._cli(
                "upgrade",
                "--install",
                self.release,
                str(CHART),
                "--create-namespace",
                "--wait",
                f"--timeout={timeout_s}s",
                values=values,
            )
        else:
            self._sdk("install", values=values, timeout=timeout_s)

    def upgrade(
        self, values: dict[str, Any], *, reuse_values: bool = False, timeout_s: int = 900
    ) -> None:
        """Upgrade in place; with `reuse_values`, `values` change the release's current ones."""
        if self.cli:
            reuse = ["--reuse-values"] if reuse_values else []
            self._cli(
                "upgrade",
                self.release,
                str(CHART),
                *reuse,
                "--wait",
                f"--timeout={timeout_s}s",
                values=values,
            )
        else:
            self._sdk("upgrade", values=values, reuse_values=reuse_values, timeout=timeout_s)

    def values(self) -> dict[str, Any]:
        """The release's values, defaults included."""
        if self.cli:
            return dict(json.loads(self._cli("get", "values", self.release, "--all", "-o", "json")))
        return dict(self._sdk("values"))

    def test(self, *, timeout_s: int = 300) -> str:
        """Runs `helm test`; returns its pods' logs. Raises ChaosError when a test failed."""
        if self.cli:
            return self._cli("test", self.release, "--logs", f"--timeout={timeout_s}s")
        return str(self._sdk("test", timeout=timeout_s))

    def rollback(self, revision: int, *, timeout_s: int = 600) -> None:
        """`helm rollback` to `revision` (CLI only: the library has no rollback)."""
        if not self.cli:
            raise ChaosError("helm rollback needs the helm CLI (make kind-tools installs it)")
        self._cli("rollback", self.release, str(revision), "--wait", f"--timeout={timeout_s}s")

    def history(self) -> list[dict[str, Any]]:
        """The release's revisions, oldest first (CLI only)."""
        if not self.cli:
            raise ChaosError("helm history needs the helm CLI")
        return list(json.loads(self._cli("history", self.release, "-o", "json")))

    def uninstall(self, *, timeout_s: int = 300) -> None:
        if self.cli:
            self._cli("uninstall", self.release, "--wait", f"--timeout={timeout_s}s")
        else:
            self._sdk("uninstall", timeout=timeout_s)

    def _cli(self, *args: str, values: dict[str, Any] | None = None) -> str:
        assert self.cli is not None
        command = [self.cli, *args, "--kube-context", self.context, "-n", self.namespace]
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            if values is not None:
                json.dump(values, file)
                file.flush()
                command += ["-f", file.name]
            done = subprocess.run(  # noqa: S603 (the helm binary, arguments built here)
                command, capture_output=True, text=True, timeout=1800, check=False
            )
        if done.returncode != 0:
            raise ChaosError(f"helm {args[0]} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def _sdk(self, operation: str, **arguments: Any) -> Any:
        kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        request = {
            "operation": operation,
            "kubeconfig": kubeconfig.split(os.pathsep)[0],
            "context": self.context,
            "namespace": self.namespace,
            "release": self.release,
            "chart": str(CHART),
            **arguments,
        }
        done = subprocess.run(
            ["helm", "-m", "loadtest.chaos.helm_sdk"],  # noqa: S607 (argv[0] only: the field manager)
            executable=sys.executable,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            cwd=ROOT,
            # Started as `helm`, the interpreter cannot find its own environment: hand it ours.
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
        if done.returncode != 0:
            raise ChaosError(f"helm {operation} failed: {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout)["result"]
