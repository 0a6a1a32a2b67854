"""scripts/kind.sh with fake docker/kind/kubectl/helm: the decisions it makes (names, flags,
node image, the cgroup v1 patch, offline values), not kind itself (tests/e2e runs that)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.fake_commands import ROOT, FakeCommands

PINNED_NODE = (
    "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"
)


def docker_fake(*, cgroup: str = "2", node_image: str = "", labels: str = "") -> str:
    """A docker whose engine runs cgroup v`cgroup` and whose control-plane container runs
    `node_image` (an image carrying the offline build's label when `labels` is set)."""
    return f"""
case "$1 $2" in
  "info --format") echo {cgroup} ;;
  "inspect --format") [ -n "{node_image}" ] && echo "{node_image}" || exit 1 ;;
  "image inspect") case "$*" in
      *io.sessionfleet.inputs*) echo "{labels}" ;;
      *) echo linux/amd64 ;;
    esac ;;
esac
exit 0"""


@pytest.fixture
def fakes(tmp_path: Path) -> FakeCommands:
    fakes = FakeCommands(tmp_path)
    fakes.add(
        "kind",
        'case "$1" in get) echo "${CLUSTERS:-}" | tr " " "\\n" | grep . ;; '
        'version) echo "kind ${KIND_VERSION:-v0.33.0} go1.26.8 linux/amd64" ;; '
        'create) cat > "$FAKE_CALLS.config" ;; esac; exit 0',
    )
    fakes.add("kubectl", 'case "$*" in *"-f -"*) cat >/dev/null ;; esac')  # reads its stdin
    fakes.add("helm")
    fakes.add("go", 'echo \'\t"Dir": "/nonexistent/gateway-api",\'')
    fakes.add("docker", docker_fake())
    return fakes


@pytest.mark.parametrize(
    ("have", "at_least"),
    [
        ("0.33.0", True),
        ("v0.33.0", True),
        ("v0.34.2", True),
        ("1.0.0", True),
        ("0.33.1-alpha", True),
        ("v0.32.0", False),
        ("0.27.0", False),
        ("unknown", False),
    ],
)
def test_kind_version_comparison(fakes: FakeCommands, have: str, at_least: bool) -> None:
    run = fakes.run("kind.sh", f'version_at_least "{have}" 0.33.0 && echo yes || echo no')
    assert run.stdout.strip() == ("yes" if at_least else "no")


def test_up_refuses_a_kind_older_than_the_node_image(fakes: FakeCommands) -> None:
    run = fakes.run("kind.sh", "main up", {"KIND_VERSION": "v0.30.0"})
    assert run.returncode == 1
    assert "needs kind >= 0.33.0" in run.stderr
    assert not run.called("kind create")


def created_config(fakes: FakeCommands) -> dict:
    return yaml.safe_load(Path(f"{fakes.log}.config").read_text())


def test_up_creates_the_cluster_under_kind_cluster_with_the_pinned_node_image(
    fakes: FakeCommands,
) -> None:
    run = fakes.run("kind.sh", "main up", {"KIND_CLUSTER": "shop", "KIND_HTTP_PORT": "9000"})
    assert run.returncode == 0, run.stderr
    [create] = run.called("kind create")
    assert "--name shop --config -" in create
    assert "--image" not in create  # each node keeps cluster.yaml's digest-pinned image
    config = created_config(fakes)
    [mapping] = config["nodes"][0]["extraPortMappings"]
    assert (mapping["hostPort"], mapping["listenAddress"]) == (9000, "127.0.0.1")
    assert "kubeadmConfigPatches" not in config  # cgroup v2: nothing to allow
    assert all("--context kind-shop" in call for call in run.called("kubectl"))
    assert "gatewayclass/traefik" in " ".join(run.called("kubectl"))


def test_up_allows_cgroup_v1_where_the_engine_runs_it(fakes: FakeCommands) -> None:
    fakes.add("docker", docker_fake(cgroup="1"))
    run = fakes.run("kind.sh", "main up")
    assert run.returncode == 0, run.stderr
    [patch] = created_config(fakes)["kubeadmConfigPatches"]
    assert yaml.safe_load(patch) == {"kind": "KubeletConfiguration", "failCgroupV1": False}


def test_up_uses_an_explicit_node_image(fakes: FakeCommands) -> None:
    run = fakes.run("kind.sh", "main up", {"KIND_NODE_IMAGE": "corp/kind-node:v1.37.1"})
    assert run.returncode == 0, run.stderr
    [create] = run.called("kind create")
    assert create.endswith("--image corp/kind-node:v1.37.1 --wait 240s")


def test_up_keeps_an_existing_cluster(fakes: FakeCommands) -> None:
    run = fakes.run("kind.sh", "main up", {"KIND_CLUSTER": "shop", "CLUSTERS": "other shop"})
    assert run.returncode == 0, run.stderr
    assert not run.called("kind create")


def test_every_node_runs_the_digest_pinned_image() -> None:
    config = yaml.safe_load((ROOT / "k8s" / "kind" / "cluster.yaml").read_text())
    assert {node["image"] for node in config["nodes"]} == {PINNED_NODE}
    zones = [node.get("labels", {}).get("topology.kubernetes.io/zone") for node in config["nodes"]]
    assert zones == [None, "zone-a", "zone-b", "zone-c"]


def test_the_pinned_node_image_is_the_one_kind_defaults_to() -> None:
    # kind v0.33.0 defaults to kindest/node v1.37.0; the pinned kind in kube-tools.sh.
    tools = (ROOT / "scripts" / "kube-tools.sh").read_text()
    assert "KIND_VERSION=v0.33.0" in tools
    assert PINNED_NODE.startswith("kindest/node:v1.37.0@")


def test_load_falls_back_to_a_single_platform_archive(fakes: FakeCommands) -> None:
    fakes.add(
        "kind",
        'case "$1 $2" in "load docker-image") exit 1 ;; '
        '"load image-archive") test -f "$3" || exit 3 ;; esac; exit 0',
    )
    fakes.add(
        "docker",
        """
case "$1 $2" in
  "image inspect") echo linux/arm64 ;;
  "image save") [ "$3" = --help ] && echo "  --platform string   Save only the given platform" ;;
  inspect*) exit 1 ;;
esac
exit 0""",
    )
    run = fakes.run("kind.sh", "main load", {"KIND_CLUSTER": "shop", "IMAGE": "sf:dev"})
    assert run.returncode == 0, run.stderr
    [save] = [call for call in run.called("docker image save") if "--help" not in call]
    assert save.startswith("docker image save --platform linux/arm64 --output ")
    archive = save.split("--output ")[1].split()[0]
    assert run.called("kind load image-archive") == [
        f"kind load image-archive {archive} --name shop"
    ]
    assert not Path(archive).exists()  # removed on exit


def test_load_loads_the_app_image_alone_on_a_cluster_that_can_pull(fakes: FakeCommands) -> None:
    fakes.add("docker", docker_fake(node_image=PINNED_NODE))
    run = fakes.run("kind.sh", "main load", {"KIND_CLUSTER": "shop", "IMAGE": "sf:dev"})
    assert run.returncode == 0, run.stderr
    assert run.called("kind load") == ["kind load docker-image sf:dev --name shop"]


def test_load_adds_the_redis_image_on_an_offline_cluster(fakes: FakeCommands) -> None:
    fakes.add("docker", docker_fake(node_image="sessionfleet/kind-node:v1.37.2", labels="abc"))
    run = fakes.run("kind.sh", "main load", {"KIND_CLUSTER": "shop", "IMAGE": "sf:dev"})
    assert run.returncode == 0, run.stderr
    assert run.called("kind load") == [
        "kind load docker-image sf:dev --name shop",
        "kind load docker-image sessionfleet/redis:bookworm --name shop",
    ]


def helm_logging_values(fakes: FakeCommands) -> None:
    """A helm that logs the contents of the values file kind.sh wrote."""
    fakes.add(
        "helm",
        'for a; do case "$a" in *sessionfleet-kind-values*) '
        'sed "s/^/values: /" "$a" >> "$FAKE_CALLS" ;; esac; done',
    )


def test_deploy_installs_with_the_helm_cli_then_runs_helm_test(fakes: FakeCommands) -> None:
    fakes.add("docker", docker_fake(node_image=PINNED_NODE))
    helm_logging_values(fakes)
    run = fakes.run(
        "kind.sh", "main deploy", {"KIND_CLUSTER": "shop", "NAMESPACE": "web", "IMAGE": "sf:1.2"}
    )
    assert run.returncode == 0, run.stderr
    [install, test] = run.called("helm")
    assert install.startswith("helm upgrade --install sf helm/sessionfleet --kube-context kind-")
    assert "--kube-context kind-shop " in install
    assert "--namespace web --create-namespace -f k8s/kind/values-kind.yaml " in install
    assert "--set image.repository=sf --set image.tag=1.2 --wait" in install
    assert test == "helm test sf --kube-context kind-shop --namespace web --logs"
    assert not [call for call in run.calls if call.startswith("values: ")]  # pulls Redis
    assert "TARGET=http://127.0.0.1:8090 CHAOS=kubernetes KUBE_CONTEXT=kind-shop" in run.stdout


def test_deploy_runs_the_locally_built_redis_on_an_offline_cluster(fakes: FakeCommands) -> None:
    fakes.add("docker", docker_fake(node_image="sessionfleet/kind-node:v1.37.2", labels="abc"))
    helm_logging_values(fakes)
    run = fakes.run("kind.sh", "main deploy")
    assert run.returncode == 0, run.stderr
    values = "\n".join(
        call.removeprefix("values: ") for call in run.calls if call.startswith("values: ")
    )
    assert yaml.safe_load(values) == {
        "redis": {
            "image": {"repository": "sessionfleet/redis", "tag": "bookworm", "pullPolicy": "Never"}
        }
    }
