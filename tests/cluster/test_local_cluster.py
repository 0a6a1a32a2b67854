"""The local container cluster: the chart's images, bootstrap scripts and config files in
containers grouped into three "nodes", HAProxy in front. Converges to exactly one master after
a fresh start, a master crash, a master pod coming back at a new IP, a node loss and a node
drain; a login made before each event still works after it."""

from __future__ import annotations

import httpx
import pytest

from harness.processes import wait_until
from loadtest.chaos.local import LocalCluster

# Starting the cluster (building its images on a fresh machine) counts against the first test.
pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(1500)]


def logged_in(url: str, password: str, user: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=10)
    response = client.post("/login", json={"username": user, "password": password})
    assert response.status_code == 200, response.text
    return client


def still_logged_in(client: httpx.Client) -> None:
    def ok() -> bool:
        return client.get("/me").status_code == 200

    # The ingress may need a moment to route around a dead replica: poll, bounded.
    wait_until(ok, 30, "login still valid")
    assert client.get("/me").json()["user"]


def test_fresh_start_has_exactly_one_master(fleet: tuple[LocalCluster, str, str]) -> None:
    cluster, url, password = fleet
    master = cluster.wait_converged()
    roles = [cluster.redis_role(i) for i in range(3)]
    assert roles.count("master") == 1 and roles.count("slave") == 2
    assert roles[master] == "master"
    client = logged_in(url, password, "user-0001")
    served = {client.get("/me").headers["x-served-by"] for _ in range(9)}
    assert served == {"app-a", "app-b", "app-c"}


def test_master_crash_converges_and_keeps_logins(fleet: tuple[LocalCluster, str, str]) -> None:
    cluster, url, password = fleet
    before = cluster.wait_converged()
    client = logged_in(url, password, "user-0002")
    cluster.kill_redis_master()
    after = cluster.wait_converged()
    assert after != before
    assert cluster.redis_role(before) == "slave"
    still_logged_in(client)


def test_master_back_with_new_ip_rejoins_as_replica(fleet: tuple[LocalCluster, str, str]) -> None:
    cluster, url, password = fleet
    before = cluster.wait_converged()
    old_ip = cluster.ip_of(cluster.container(f"pod-{before}"))
    client = logged_in(url, password, "user-0003")
    cluster.recreate_redis_master_with_new_ip()
    after = cluster.wait_converged()
    assert cluster.ip_of(cluster.container(f"pod-{before}")) != old_ip
    assert after != before and cluster.redis_role(before) == "slave"
    still_logged_in(client)


@pytest.mark.parametrize("action", ["lose_node", "drain_node"])
def test_node_loss_or_drain_converges_and_keeps_logins(
    fleet: tuple[LocalCluster, str, str], action: str
) -> None:
    cluster, url, password = fleet
    before = cluster.wait_converged()
    node = cluster.node_of_redis(before)
    first = 10 if action == "lose_node" else 20
    clients = [logged_in(url, password, f"user-{i:04d}") for i in range(first, first + 10)]
    getattr(cluster, action)(node)
    wait_until(lambda: cluster.master_index() not in (None, before), 60, f"failover after {action}")
    for client in clients:
        still_logged_in(client)
    cluster.restore_node(node)
    cluster.wait_converged()
    assert cluster.redis_role(before) == "slave"  # the lost master came back as a replica
    for client in clients:
        still_logged_in(client)
