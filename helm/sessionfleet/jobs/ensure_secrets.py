"""Creates the chart's generated Secrets once, inside the cluster (a pre-install/pre-upgrade
hook Job). Rendered manifests therefore carry no password: `helm template`, Argo CD and Flux
render the same objects every time and never rotate a password by re-rendering it.

Usage: ensure_secrets.py NAME=key1,key2 [NAME=key ...]: each Secret that does not exist is
created with a random value per key; one that exists is left as it is (missing keys added).
ensure_secrets.py --delete NAME [NAME ...]: the post-delete hook's clean-up (`helm uninstall`
leaves nothing behind, unless Redis keeps data on volumes: then the chart keeps the passwords
that data needs on a reinstall). Talks to the API server with the pod's service account
(Python's standard library only).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API = "https://kubernetes.default.svc"


def call(method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    token = (ACCOUNT / "token").read_text().strip()
    kind = "merge-patch+json" if method == "PATCH" else "json"
    request = urllib.request.Request(  # noqa: S310 (the in-cluster API server, over TLS)
        f"{API}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"application/{kind}",
        },
    )
    context = ssl.create_default_context(cafile=str(ACCOUNT / "ca.crt"))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
        return json.loads(response.read() or b"{}")  # type: ignore[no-any-return]


def random_value() -> str:
    return base64.b64encode(secrets.token_urlsafe(30).encode()).decode()


def ensure(namespace: str, name: str, keys: list[str], labels: dict[str, str]) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    try:
        existing = call("GET", f"{path}/{name}")
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "labels": labels},
            "type": "Opaque",
            "data": {key: random_value() for key in keys},
        }
        call("POST", path, body)
        print(f"secret {name}: created with {', '.join(keys)}")
        return
    data = existing.get("data") or {}
    missing = [key for key in keys if key not in data]  # type: ignore[operator]
    if missing:
        call("PATCH", f"{path}/{name}", {"data": {key: random_value() for key in missing}})
        print(f"secret {name}: added {', '.join(missing)}")
    else:
        print(f"secret {name}: exists, left as it is")


def delete(namespace: str, name: str) -> None:
    try:
        call("DELETE", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        print(f"secret {name}: deleted")
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        print(f"secret {name}: already gone")


def main(argv: list[str]) -> int:
    namespace = (ACCOUNT / "namespace").read_text().strip()
    if argv[:1] == ["--delete"]:
        for name in argv[1:]:
            delete(namespace, name)
        return 0
    labels = {
        "app.kubernetes.io/managed-by": "sessionfleet-secret-job",
        "app.kubernetes.io/instance": os.environ.get("RELEASE", ""),
    }
    for spec in argv:
        name, _, keys = spec.partition("=")
        ensure(namespace, name, keys.split(","), labels)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
