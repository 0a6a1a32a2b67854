"""One Helm operation through helm-python-sdk, as a child process of `helm.py`: a JSON request
on stdin, `{"result": ...}` on stdout, a one-line reason on stderr and exit 1 on failure."""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> int:
    request = json.load(sys.stdin)
    try:
        from helm_python import Config
    except ImportError:
        print("neither the helm CLI nor helm-python-sdk is installed", file=sys.stderr)
        return 1
    config = Config(
        kubeconfig_path=request["kubeconfig"],
        kube_context=request["context"],
        namespace=request["namespace"],
    )
    release, chart, namespace = request["release"], request["chart"], request["namespace"]
    timeout = request.get("timeout")
    try:
        result: Any = None
        operation = request["operation"]
        if operation == "install":
            installed = config.list(name_filter=release) or []
            if any(r["name"] == release for r in installed):
                config.upgrade(
                    chart,
                    release,
                    request["values"],
                    namespace=namespace,
                    wait="watcher",
                    timeout=timeout,
                )
            else:
                config.install(
                    chart,
                    release,
                    request["values"],
                    namespace=namespace,
                    create_namespace=True,
                    wait="watcher",
                    timeout=timeout,
                )
        elif operation == "upgrade":
            config.upgrade(
                chart,
                release,
                request["values"],
                namespace=namespace,
                reuse_values=request.get("reuse_values", False),
                wait="watcher",
                timeout=timeout,
            )
        elif operation == "values":
            result = dict(config.get_values(release, all_values=True))
        elif operation == "test":
            outcome = config.test(release, logs=True, timeout=timeout)
            result = outcome.get("logs", "") if isinstance(outcome, dict) else str(outcome)
        elif operation == "uninstall":
            config.uninstall(release, wait="watcher", timeout=timeout)
        else:
            raise ValueError(f"unknown operation {operation!r}")
    except Exception as exc:  # the SDK's own error types: reported, not a traceback
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    json.dump({"result": result}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
