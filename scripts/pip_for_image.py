"""Runs pip with dependency markers evaluated for the image's Python on Linux, not the host's.

pip picks wheels by --platform, --python-version and --abi, but it evaluates the markers of
dependencies (`python_full_version < "3.11.3"`, `python_version < "3.12"`,
`sys_platform == "linux"`) with the interpreter that runs it. A 3.11.7 or 3.12 host, or a macOS
host, would then leave out wheels the image needs (async-timeout for redis on 3.11.2) and
`docker build` would fail offline. Used by scripts/build-wheelhouse.sh:

    python scripts/pip_for_image.py PYTHON_VERSION MACHINE download ...

MACHINE is Linux's name for the image's architecture (x86_64, aarch64). Runs on any host Python
that has pip; it touches pip's vendored `packaging` only through `default_environment`, which
`Marker.evaluate` has called since the first pip that vendored packaging.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def marker_environment(python_version: str, machine: str) -> dict[str, str]:
    """The PEP 508 marker values of CPython `python_version` on glibc Linux/`machine`."""
    return {
        "implementation_name": "cpython",
        "implementation_version": python_version,
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": python_version,
        "python_version": ".".join(python_version.split(".")[:2]),
        "sys_platform": "linux",
    }


@contextmanager
def image_markers(python_version: str, machine: str) -> Iterator[None]:
    """Within the block, pip's markers see the image; the host's values outside it."""
    from pip._vendor.packaging import markers

    host_environment = markers.default_environment
    image = marker_environment(python_version, machine)

    def image_environment() -> dict[str, str]:
        # platform_release/platform_version stay the host's: the image's are unknowable.
        return {**host_environment(), **image}

    markers.default_environment = image_environment  # type: ignore[assignment]
    try:
        yield
    finally:
        markers.default_environment = host_environment


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        sys.exit("usage: pip_for_image.py PYTHON_VERSION MACHINE PIP_ARGS...")
    python_version, machine, *pip_args = argv
    with image_markers(python_version, machine):
        sys.argv = ["pip", *pip_args]
        runpy.run_module("pip", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
