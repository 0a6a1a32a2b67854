"""scripts/kind.sh with fake docker/kind/kubectl: what it would run on a real machine.

kind cannot run where this project is developed; these tests pin the decisions the script
makes (names, flags, which cloud-provider-kind to use, how it is stopped), not kind itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.fake_commands import ROOT, FakeCommands

CPK = "sessionfleet-cloud-provider-kind"
# The default image reference, as the script defines it.
CPK_IMAGE = subprocess.run(
    ["bash", "-c", 'source scripts/kind.sh; echo "$CPK_IMAGE"'],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=30,
    check=True,
).stdout.strip()


def docker_fake(*, ps: str = "", running: str = "", os_name: str = "Ubuntu 24.04") -> str:
    """A docker whose `ps` prints `ps` and whose only running container is `running`."""
    return f"""
case "$1" in
  ps) case "$*" in *"-aq"*) echo "${{LEFTOVERS:-}}" | tr ' ' '\\n' | grep . || true ;;
                  *) printf '%b' "{ps}" ;; esac ;;
  inspect) [ -n "{running}" ] && [ "${{@: -1}}" = "{running}" ] && {{ echo true; exit 0; }}
           exit 1 ;;
  info) echo "{os_name}" ;;
esac
exit 0"""


@pytest.fixture
def fakes(tmp_path: Path) -> FakeCommands:
    fakes = FakeCommands(tmp_path)
    fakes.add(
        "kind",
        'case "$1" in get) echo "${CLUSTERS:-}" | tr " " "\\n" | grep . ;; '
        'version) echo "kind ${KIND_VERSION:-v0.30.0} go1.24.6 linux/amd64" ;; esac; exit 0',
    )
    fakes.add("kubectl")
    fakes.add("pgrep", 'echo "${PGREP:-}" | grep . || exit 1')
    fakes.add("uname", 'echo "${UNAME_S:-Linux}"')
    fakes.add("docker", docker_fake())
    return fakes


@pytest.mark.parametrize(
    ("have", "at_least"),
    [
        ("0.30.0", True),
        ("v0.30.0", True),
        ("v0.31.2", True),
        ("1.0.0", True),
        ("0.30.1-alpha", True),
        ("v0.29.0", False),
        ("0.27.0", False),
        ("unknown", False),
    ],
)
def test_kind_version_comparison(fakes: FakeCommands, have: str, at_least: bool) -> None:
    run = fakes.run("kind.sh", f'version_at_least "{have}" 0.30.0 && echo yes || echo no')
    assert run.stdout.strip() == ("yes" if at_least else "no")


def test_up_refuses_a_kind_older_than_the_node_image(fakes: FakeCommands) -> None:
    run = fakes.run("kind.sh", "main up", {"KIND_VERSION": "v0.27.0"})
    assert run.returncode == 1
    assert "needs kind >= 0.30.0" in run.stderr
    assert not run.called("kind create")


def test_up_creates_the_cluster_under_kind_cluster_and_starts_cloud_provider(
    fakes: FakeCommands,
) -> None:
    run = fakes.run("kind.sh", "main up", {"KIND_CLUSTER": "shop"})
    assert run.returncode == 0, run.stderr
    [create] = run.called("kind create")
    assert "--name shop" in create
    assert "--config k8s/kind/cluster.yaml" in create
    [start] = run.called("docker run")
    assert f"--name {CPK} " in start
    assert "--network kind" in start
    assert start.endswith(CPK_IMAGE)  # no port mapping on Linux with a native engine
    assert all("--context kind-shop" in call for call in run.called("kubectl"))


def test_up_keeps_an_existing_cluster(fakes: FakeCommands) -> None:
    run = fakes.run("kind.sh", "main up", {"KIND_CLUSTER": "shop", "CLUSTERS": "other shop"})
    assert run.returncode == 0, run.stderr
    assert not run.called("kind create")


@pytest.mark.parametrize(
    ("uname", "engine"), [("Darwin", "Docker Desktop"), ("Linux", "Docker Desktop")]
)
def test_up_maps_gateway_ports_where_container_ips_are_unreachable(
    fakes: FakeCommands, uname: str, engine: str
) -> None:
    fakes.add("docker", docker_fake(os_name=engine))
    run = fakes.run("kind.sh", "main up", {"UNAME_S": uname})
    assert run.returncode == 0, run.stderr
    [start] = run.called("docker run")
    assert start.endswith(f"{CPK_IMAGE} --enable-lb-port-mapping")


def test_up_reuses_a_cloud_provider_container_from_another_setup(fakes: FakeCommands) -> None:
    ps = (
        r"web\tnginx\t\"/docker-entrypoint.sh nginx\"\n"
        # an Envoy proxy of cloud-provider-kind: its command may name the project
        r"kindccm-gw-1a2b\tenvoyproxy/envoy\t\"bash -c 'echo cloud-provider-kind'\"\n"
        rf"lab-ccm\t{CPK_IMAGE}\t\"/bin/cloud-provider-kind\"\n"
    )
    fakes.add("docker", docker_fake(ps=ps))
    run = fakes.run("kind.sh", "main up")
    assert run.returncode == 0, run.stderr
    assert "already serves this host (container lab-ccm)" in run.stdout
    assert not run.called("docker run")


def test_a_locally_built_cloud_provider_is_recognised_by_its_command(
    fakes: FakeCommands,
) -> None:
    ps = r"ccm\tlocal/ccm:dev\t\"/usr/local/bin/cloud-provider-kind -v 2\"\n"
    fakes.add("docker", docker_fake(ps=ps))
    run = fakes.run("kind.sh", "cpk_containers")
    assert run.stdout.split() == ["ccm"]


def test_up_reuses_a_cloud_provider_process_on_the_host(fakes: FakeCommands) -> None:
    run = fakes.run("kind.sh", "main up", {"PGREP": "4242"})
    assert run.returncode == 0, run.stderr
    assert "already serves this host (process 4242)" in run.stdout
    assert not run.called("docker run")


def test_up_keeps_its_own_running_cloud_provider(fakes: FakeCommands) -> None:
    fakes.add("docker", docker_fake(running=CPK))
    run = fakes.run("kind.sh", "main up")
    assert run.returncode == 0, run.stderr
    assert not run.called("docker run")


def test_up_explains_a_missing_gateway_class(fakes: FakeCommands) -> None:
    fakes.add("kubectl", "exit 1")
    fakes.add("sleep")
    run = fakes.run("kind.sh", "main up", {"PGREP": "4242"})
    assert run.returncode == 1
    assert "--gateway-channel disabled" in run.stderr


def test_down_stops_cloud_provider_gracefully_then_removes_leftover_proxies(
    fakes: FakeCommands,
) -> None:
    fakes.add("docker", docker_fake(running=CPK))
    run = fakes.run(
        "kind.sh", "main down", {"KIND_CLUSTER": "shop", "CLUSTERS": "shop", "LEFTOVERS": "ab cd"}
    )
    assert run.returncode == 0, run.stderr
    assert run.called("docker stop") == [f"docker stop --time 30 {CPK}"]
    assert f"docker rm {CPK}" in run.calls
    assert not [call for call in run.calls if call.startswith("docker rm -f") and CPK in call]
    assert run.called("kind delete") == ["kind delete cluster --name shop"]
    assert "docker ps -aq --filter label=io.x-k8s.cloud-provider-kind.cluster=shop" in run.calls
    assert run.called("docker rm -f") == ["docker rm -f ab cd"]
    # stopped before the cluster goes, so it cleans up what it made for it
    assert run.calls.index(f"docker stop --time 30 {CPK}") < run.calls.index(
        "kind delete cluster --name shop"
    )


def test_down_leaves_cloud_provider_running_for_other_clusters(fakes: FakeCommands) -> None:
    fakes.add("docker", docker_fake(running=CPK))
    run = fakes.run("kind.sh", "main down", {"KIND_CLUSTER": "shop", "CLUSTERS": "shop lab"})
    assert run.returncode == 0, run.stderr
    assert not run.called("docker stop")
    assert "also serves kind cluster(s) lab" in run.stdout
    assert run.called("kind delete") == ["kind delete cluster --name shop"]


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


def test_load_uses_kind_load_when_it_works(fakes: FakeCommands) -> None:
    run = fakes.run("kind.sh", "main load", {"KIND_CLUSTER": "shop", "IMAGE": "sf:dev"})
    assert run.returncode == 0, run.stderr
    assert run.called("kind load") == ["kind load docker-image sf:dev --name shop"]
    assert not run.called("docker image save")


@pytest.mark.parametrize(
    ("published", "address"),
    [
        ("0.0.0.0:55001\n[::]:55001", "127.0.0.1:55001"),
        ("[::]:55001\n127.0.0.1:55002", "127.0.0.1:55002"),
        ("", ""),
    ],
)
def test_host_address_of_a_published_port(
    fakes: FakeCommands, published: str, address: str
) -> None:
    run = fakes.run("kind.sh", f"printf '{published}' | host_address")
    assert run.stdout.strip() == address


def test_gateway_host_address_finds_the_proxy_by_its_label(fakes: FakeCommands) -> None:
    fakes.add(
        "docker",
        """
case "$1" in
  ps) echo kindccm-gw-1a2b ;;
  port) [ "$2 $3" = "kindccm-gw-1a2b 80/tcp" ] && printf '0.0.0.0:55001\\n[::]:55001\\n' ;;
esac""",
    )
    run = fakes.run(
        "kind.sh",
        "gateway_host_address sf-sessionfleet 80",
        {"KIND_CLUSTER": "shop", "NAMESPACE": "web"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "127.0.0.1:55001"
    [ps] = run.called("docker ps")
    assert "label=io.x-k8s.cloud-provider-kind.gateway.name=shop/web/sf-sessionfleet" in ps


def test_gateway_host_address_is_empty_without_port_mapping(fakes: FakeCommands) -> None:
    fakes.add("docker", 'case "$1" in ps) echo kindccm-gw-1a2b ;; port) exit 1 ;; esac')
    run = fakes.run("kind.sh", "gateway_host_address sf-sessionfleet 80")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""


def test_kind_values_let_the_gateway_network_in_and_trust_it(fakes: FakeCommands) -> None:
    run = fakes.run("kind.sh", "kind_values 172.19.0.0/16")
    values = yaml.safe_load(run.stdout)
    assert values == {
        "networkPolicy": {"appIngressFrom": [{"ipBlock": {"cidr": "172.19.0.0/16"}}]},
        "app": {"trustedProxies": "172.19.0.0/16,10.244.0.0/16"},
    }


def test_pod_subnet_matches_the_cluster_config(fakes: FakeCommands) -> None:

    config = yaml.safe_load((ROOT / "k8s" / "kind" / "cluster.yaml").read_text())
    run = fakes.run("kind.sh", 'echo "$POD_SUBNET"')
    assert run.stdout.strip() == config["networking"]["podSubnet"]


def test_every_node_runs_the_digest_pinned_image() -> None:

    config = yaml.safe_load((ROOT / "k8s" / "kind" / "cluster.yaml").read_text())
    images = {node["image"] for node in config["nodes"]}
    assert images == {
        "kindest/node:v1.34.0@sha256:"
        "7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
    }


def test_deploy_targets_the_clusters_context_and_prints_the_localhost_address(
    fakes: FakeCommands,
) -> None:
    fakes.add(
        "docker",
        """
case "$1" in
  network) echo 172.19.0.0/16 ;;
  ps) echo kindccm-gw-1a2b ;;
  port) printf '0.0.0.0:55001\\n' ;;
esac""",
    )
    fakes.add(
        "kubectl",
        """
case "$*" in
  *"get gateway -l"*) echo sf-sessionfleet ;;
  *"{.spec.listeners[0].port}"*) echo 80 ;;
  *"{.status.addresses[0].value}"*) echo 172.19.0.7 ;;
esac""",
    )
    # helm logs the values file the script wrote for kind's network
    fakes.add(
        "helm",
        'for a; do case "$a" in *sessionfleet-kind-values*) '
        'sed "s/^/values: /" "$a" >> "$FAKE_CALLS" ;; esac; done',
    )
    run = fakes.run("kind.sh", "main deploy", {"KIND_CLUSTER": "shop", "NAMESPACE": "web"})
    assert run.returncode == 0, run.stderr
    assert all("--context kind-shop" in call for call in run.called("kubectl"))
    assert all("--kube-context kind-shop" in call for call in run.called("helm"))
    [install] = run.called("helm upgrade")
    assert "-f k8s/kind/values-kind.yaml -f " in install
    assert '    - ipBlock: {cidr: "172.19.0.0/16"}' in [
        call.removeprefix("values: ") for call in run.calls
    ]
    assert "gateway address: http://172.19.0.7 " in run.stdout
    assert "gateway from this host: http://127.0.0.1:55001" in run.stdout
    assert "TARGET=http://127.0.0.1:55001" in run.stdout


def test_deploy_needs_the_kind_network(fakes: FakeCommands) -> None:
    fakes.add("helm")
    run = fakes.run("kind.sh", "main deploy")
    assert run.returncode == 1
    assert "run make kind-up first" in run.stderr
    assert not run.called("helm")
