"""Prints docs/configuration.md's settings table from app.settings (the single source).

Usage: python scripts/settings_doc.py > docs/configuration.md   (a test checks they agree)
"""

from __future__ import annotations

from pydantic import SecretStr

from app.settings import ENV_PREFIX, Settings

HEADER = """# Configuration

Every setting is an environment variable with the `SESSIONFLEET_` prefix. Secrets (marked
*secret*) can instead be read from a file named by the same variable with `_FILE` appended,
which is how a Kubernetes Secret is mounted. Generated from `app/settings.py` by
`python scripts/settings_doc.py`; a test fails when the two disagree.

| variable | default | meaning |
|---|---|---|
"""

GUNICORN = """
## Process settings (read by `gunicorn.conf.py`)

| variable | default | meaning |
|---|---|---|
| `SESSIONFLEET_BIND` | `0.0.0.0:8000` | address gunicorn listens on |
| `SESSIONFLEET_WORKERS` | `2` (or `WEB_CONCURRENCY`) | uvicorn worker processes |
| `SESSIONFLEET_KEEPALIVE` | `75` | seconds an idle keep-alive connection is kept |
| `SESSIONFLEET_GRACEFUL_TIMEOUT` | `25` | seconds in-flight requests get after SIGTERM |
| `SESSIONFLEET_WORKER_TIMEOUT` | `30` | seconds before a silent worker is restarted |
| `SESSIONFLEET_LOG_LEVEL` | `info` | gunicorn log level |
| `SESSIONFLEET_WORKER_TMP_DIR` | `/dev/shm` | worker heartbeat directory (tmpfs) |

gunicorn itself believes no `X-Forwarded-For`: the app reads it (next section).

## Client addresses behind proxies

Login throttling counts failures per client address, so the address must be one the client
cannot choose. `SESSIONFLEET_TRUSTED_PROXIES` lists your own proxies (addresses or CIDR
ranges). When the connecting peer is one of them, the app walks `X-Forwarded-For` from the
right, skipping addresses of trusted proxies, and takes the first one that is not: that is the
address your outermost proxy saw. Anything further left was written by the client and is
ignored. With the setting empty (the default) the peer itself is the client, and the header is
ignored whatever it says. Set it to:

| where the app runs | `SESSIONFLEET_TRUSTED_PROXIES` |
|---|---|
| the local container cluster (HAProxy, `option forwardfor`) | HAProxy's fixed address, set by `local-cluster/compose.yaml` |
| Kubernetes behind a Gateway or Ingress controller (Envoy, nginx, Traefik add the header) | the pod CIDR the controller's pods run in (chart value `app.trustedProxies`) |
| a cloud load balancer that reaches pods directly (GKE NEG, AWS LB controller in IP mode) | the load balancer's source ranges, as its provider documents them |
| nothing in front (`make run`) | empty |

`*` believes any peer: only where nothing but your proxies can reach the app.

## Login throttling

A failed login counts against the user name and the client address. After
`SESSIONFLEET_LOGIN_MAX_FAILURES_PER_USER` failures of one name (or
`..._PER_CLIENT` from one address) each further failure locks it for
`SESSIONFLEET_LOGIN_BACKOFF_FIRST` seconds, doubling up to `SESSIONFLEET_LOGIN_BACKOFF_MAX`;
locked attempts get `429` with `Retry-After`. Failures are forgotten after
`SESSIONFLEET_LOGIN_FAILURE_WINDOW` seconds without one. A browser that logged in as a user
keeps a device cookie (`__Host-sfdev`, HttpOnly, SameSite=Strict) for
`SESSIONFLEET_LOGIN_KNOWN_DEVICE_DAYS`: its attempts for that user count against that device
only, so someone guessing a user's password elsewhere cannot lock the user out of their own
browser. The store holds only digests of names, addresses and device tokens.

## API documentation pages

`/openapi.json` is always served. `SESSIONFLEET_API_DOCS=true` adds `/docs` (Swagger UI) and
`/redoc`, with their scripts and styles served from the installed `fastapi-offline` package and
a Content-Security-Policy that keeps them to the app's origin: they work offline and load
nothing from a CDN. They are off by default so that production serves no API explorer on the
session cookie's origin; `make run` turns them on.
"""


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        secret = field.annotation in (SecretStr, SecretStr | None)
        if field.default_factory is not None:
            default = "host name"
        elif field.default is None:
            default = "unset"
        else:
            value = field.default
            default = f"`{str(value).lower() if isinstance(value, bool) else value}`"
        meaning = (field.description or "") + (" *secret*" if secret else "")
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {default} | {meaning} |")
    return HEADER + "\n".join(rows) + "\n" + GUNICORN


if __name__ == "__main__":
    print(render(), end="")
