"""What `make image` runs must work on macOS and Fedora: no apt, no venv, no bash 4, and wheels
for the image's platform (Linux x86_64/aarch64), not the host's."""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

import pytest
from pip._vendor.packaging.markers import Marker

from scripts.pip_for_image import image_markers
from tests.unit.fake_commands import ROOT, FakeCommands

# What `make image` and the kind path run; macOS ships bash 3.2.
BASH32_SCRIPTS = ["images.sh", "build-wheelhouse.sh", "ensure-docker.sh", "kind.sh"]
BASH4_ONLY = {
    r"\bmapfile\b|\breadarray\b": "mapfile/readarray",
    r"\b(declare|local|typeset)\s+-[a-zA-Z]*[An]": "associative arrays / namerefs",
    r"\$\{[^}]*(,,|\^\^)": "case conversion ${var,,}",
    r"\$\{[a-zA-Z_]+[,^]\}": "case conversion ${var,}",
    r"\|&|&>>": "|& or &>>",
    r"\bcoproc\b": "coproc",
    r"\[\[\s+-v\b": "[[ -v ]]",
    r"\bwait\s+-n\b": "wait -n",
    r"\$EPOCH(SECONDS|REALTIME)": "$EPOCHSECONDS",
}


@pytest.fixture
def fakes(tmp_path: Path) -> FakeCommands:
    fakes = FakeCommands(tmp_path)
    fakes.add("uname", 'echo "${UNAME_M:-x86_64}"')
    fakes.add("docker", '[ -n "${DOCKER_ARCH:-}" ] && echo "$DOCKER_ARCH" || exit 1')
    return fakes


@pytest.mark.parametrize("script", BASH32_SCRIPTS)
def test_scripts_use_no_bash4_features(script: str) -> None:
    code = "\n".join(
        line
        for line in (ROOT / "scripts" / script).read_text().splitlines()
        if not line.lstrip().startswith("#")
    )
    found = [name for pattern, name in BASH4_ONLY.items() if re.search(pattern, code)]
    assert not found, f"{script} uses {found}: macOS runs it with bash 3.2"


@pytest.mark.parametrize(
    ("env", "arch"),
    [
        ({"PLATFORM": "linux/arm64"}, "aarch64"),
        ({"PLATFORM": "linux/arm64/v8"}, "aarch64"),
        ({"PLATFORM": "linux/amd64"}, "x86_64"),
        ({"DOCKER_ARCH": "aarch64", "UNAME_M": "x86_64"}, "aarch64"),  # the engine wins
        ({"DOCKER_ARCH": "x86_64", "UNAME_M": "arm64"}, "x86_64"),
        ({"UNAME_M": "arm64"}, "aarch64"),  # macOS on Apple silicon, no engine answering
        ({"UNAME_M": "x86_64"}, "x86_64"),
    ],
)
def test_wheel_architecture_is_the_images(
    fakes: FakeCommands, env: dict[str, str], arch: str
) -> None:
    run = fakes.run("build-wheelhouse.sh", "image_arch", env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == arch


@pytest.mark.parametrize(
    "env", [{"PLATFORM": "darwin/arm64"}, {"PLATFORM": "linux/riscv64"}, {"UNAME_M": "ppc64le"}]
)
def test_unsupported_platforms_are_refused(fakes: FakeCommands, env: dict[str, str]) -> None:
    run = fakes.run("build-wheelhouse.sh", "image_arch", env)
    assert run.returncode != 0
    assert "linux/amd64 or linux/arm64" in run.stderr


@pytest.mark.parametrize(("version", "tag"), [("3.11.0", "cp311"), ("3.12.4", "cp312")])
def test_abi_tag_follows_the_image_python(fakes: FakeCommands, version: str, tag: str) -> None:
    assert fakes.run("build-wheelhouse.sh", f"abi_tag {version}").stdout.strip() == tag


def test_markers_see_the_image_python_on_linux_whatever_the_host() -> None:
    with image_markers("3.11.0", "aarch64"):
        # async-timeout for redis; dependencies dropped by a 3.12 host or a macOS host
        assert Marker('python_full_version < "3.11.3"').evaluate()
        assert Marker('python_version < "3.12"').evaluate()
        assert Marker('sys_platform == "linux" and platform_machine == "aarch64"').evaluate()
        assert not Marker('sys_platform == "darwin"').evaluate()
    assert Marker(f'python_full_version == "{platform.python_version()}"').evaluate()


def test_ensure_docker_installs_nothing_when_an_engine_answers(fakes: FakeCommands) -> None:
    fakes.add("docker", "exit 0")
    for tool in ("apt-get", "dpkg", "sudo", "dockerd", "systemctl"):
        fakes.add(tool, "exit 0")
    run = fakes.execute("ensure-docker.sh")
    assert run.returncode == 0, run.stderr
    assert [call.split()[0] for call in run.calls] == ["docker"]


def test_ensure_docker_on_macos_asks_for_the_engine_instead_of_installing(
    fakes: FakeCommands,
) -> None:
    fakes.add("docker", "exit 1")
    fakes.add("uname", "echo Darwin")
    fakes.add("apt-get", "exit 0")
    fakes.add("dpkg", "exit 0")
    run = fakes.execute("ensure-docker.sh")
    assert run.returncode == 1
    assert "start Docker Desktop" in run.stderr
    assert not run.called("apt-get")


def test_make_image_needs_no_venv_and_no_debian_tools() -> None:
    dry_run = subprocess.run(
        # --no-print-directory: under `make test` a sub-make would print where it runs.
        ["make", "--no-print-directory", "-n", "image", "IMAGE=sf:test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert dry_run.splitlines() == [
        "scripts/ensure-docker.sh",
        "IMAGE=sf:test BASE_IMAGE=python:3.11-slim-bookworm PLATFORM= scripts/images.sh app",
    ]
