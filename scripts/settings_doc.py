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
| `SESSIONFLEET_FORWARDED_ALLOW_IPS` | `*` | proxies whose X-Forwarded-For is trusted |
| `SESSIONFLEET_LOG_LEVEL` | `info` | gunicorn log level |
| `SESSIONFLEET_WORKER_TMP_DIR` | `/dev/shm` | worker heartbeat directory (tmpfs) |
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
