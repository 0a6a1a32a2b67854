"""A Helm release driven by the real Helm engine: the `helm` CLI where it is installed, else the
same engine as a Python library (helm-python-sdk). Always against an explicit kube context."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .base import ChaosError

CHART = Path(__file__).resolve().parents[2] / "helm" / "sessionfleet"


class Helm:
    def __init__(self, *, context: str, namespace: str, release: str) -> None:
        if not context:
            raise ChaosError("no kube context given: refusing to act on whatever is current")
        self.context = context
        self.namespace = namespace
        self.release = release
        self.cli = shutil.which("helm")

    @property
    def engine(self) -> str:
        return "helm CLI" if self.cli else "helm-python-sdk"

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
            return
        config = self._sdk()
        if any(r["name"] == self.release for r in config.list(name_filter=self.release) or []):
            config.upgrade(
                CHART,
                self.release,
                values,
                namespace=self.namespace,
                wait="watcher",
                timeout=timeout_s,
            )
        else:
            config.install(
                CHART,
                self.release,
                values,
                namespace=self.namespace,
                create_namespace=True,
                wait="watcher",
                timeout=timeout_s,
            )

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
            return
        self._sdk().upgrade(
            CHART,
            self.release,
            values,
            namespace=self.namespace,
            reuse_values=reuse_values,
            wait="watcher",
            timeout=timeout_s,
        )

    def values(self) -> dict[str, Any]:
        """The release's values, defaults included."""
        if self.cli:
            return dict(json.loads(self._cli("get", "values", self.release, "--all", "-o", "json")))
        return dict(self._sdk().get_values(self.release, all_values=True))

    def test(self, *, timeout_s: int = 300) -> str:
        """Runs `helm test`; returns its pods' logs. Raises ChaosError when a test failed."""
        if self.cli:
            return self._cli("test", self.release, "--logs", f"--timeout={timeout_s}s")
        try:
            result = self._sdk().test(self.release, logs=True, timeout=timeout_s)
        except Exception as exc:  # the SDK raises its own error types
            raise ChaosError(f"helm test failed: {exc}") from exc
        return str(result.get("logs", "") if isinstance(result, dict) else result)

    def uninstall(self, *, timeout_s: int = 300) -> None:
        if self.cli:
            self._cli("uninstall", self.release, "--wait", f"--timeout={timeout_s}s")
            return
        self._sdk().uninstall(self.release, wait="watcher", timeout=timeout_s)

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

    def _sdk(self) -> Any:
        try:
            from helm_python import Config
        except ImportError as exc:
            raise ChaosError("neither the helm CLI nor helm-python-sdk is installed") from exc
        kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        return Config(
            kubeconfig_path=kubeconfig.split(os.pathsep)[0],
            kube_context=self.context,
            namespace=self.namespace,
        )
