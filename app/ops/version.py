"""The version this process runs, as installed (package metadata), for /healthz and metrics."""

from __future__ import annotations

import functools
from importlib import metadata


@functools.cache
def version() -> str:
    try:
        return metadata.version("sessionfleet")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
