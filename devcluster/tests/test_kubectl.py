"""The real kubectl (1.32), a client nobody here wrote, against the dev cluster."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from devcluster import DevCluster
from devcluster.testing import kubectl_env

pytestmark = pytest.mark.line_independent

POD_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: c
    image: nginx:1.27
    resources: {requests: {cpu: 100m, memory: 64Mi}}
"""


@pytest.fixture
def cluster(make_threaded_devcluster: Callable[..., DevCluster]) -> DevCluster:
    # kubectl runs as a blocking subprocess: the cluster must answer from another thread.
    return make_threaded_devcluster(nodes=3)


def run(
    kubectl: Path, cluster: DevCluster, *args: str, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl), *args],
        env=kubectl_env(cluster.kubeconfig),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def test_get_nodes(kubectl: Path, cluster: DevCluster) -> None:
    out = run(kubectl, cluster, "get", "nodes").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [line.split()[:3] for line in out[1:]] == [
        ["node-1", "Ready", "worker"],
        ["node-2", "Ready", "worker"],
        ["node-3", "Ready", "worker"],
    ]


def test_apply_get_json_events_and_delete(
    kubectl: Path, cluster: DevCluster, tmp_path: Path
) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD_YAML)
    assert run(kubectl, cluster, "apply", "-f", str(manifest)).stdout.strip() == "pod/web created"
    # a second apply with a change goes through PATCH (strategic merge)
    manifest.write_text(POD_YAML.replace("app: web", "app: web2"))
    assert run(kubectl, cluster, "apply", "-f", str(manifest)).stdout.strip() == (
        "pod/web configured"
    )
    run(kubectl, cluster, "wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
    pods = json.loads(run(kubectl, cluster, "get", "pods", "-o", "json").stdout)
    (item,) = pods["items"]
    assert item["metadata"]["labels"] == {"app": "web2"}
    assert item["status"]["phase"] == "Running"
    assert item["spec"]["nodeName"].startswith("node-")
    events = run(kubectl, cluster, "get", "events").stdout
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in events
    assert "Successfully assigned default/web to node-" in events
    assert run(kubectl, cluster, "delete", "pod", "web").stdout.strip() == 'pod "web" deleted'
    assert run(kubectl, cluster, "get", "pods", "-o", "json").stdout.count('"name"') == 0


def test_invalid_manifest_is_rejected_by_server_side_validation(
    kubectl: Path, cluster: DevCluster, tmp_path: Path
) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(POD_YAML.replace("image: nginx:1.27", "image: nginx:1.27\n    imagee: x"))
    result = run(kubectl, cluster, "apply", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert "imagee" in result.stderr


def test_get_pods_watch_streams_changes(kubectl: Path, cluster: DevCluster, tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD_YAML)
    run(kubectl, cluster, "apply", "-f", str(manifest))
    # --request-timeout ends the watch; its output lists the pod from the first event.
    result = run(
        kubectl, cluster, "get", "pods", "--watch", "--request-timeout=2s", check=False, timeout=60
    )
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[0] == "web"


def test_cordon_and_taint_through_kubectl(kubectl: Path, cluster: DevCluster) -> None:
    run(kubectl, cluster, "cordon", "node-1")
    run(kubectl, cluster, "taint", "nodes", "node-2", "dedicated=gpu:NoSchedule")
    node1 = json.loads(run(kubectl, cluster, "get", "node", "node-1", "-o", "json").stdout)
    node2 = json.loads(run(kubectl, cluster, "get", "node", "node-2", "-o", "json").stdout)
    assert node1["spec"]["unschedulable"] is True
    assert node2["spec"]["taints"] == [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    status = run(kubectl, cluster, "get", "nodes").stdout
    assert "Ready,SchedulingDisabled" in status


SERVICE_YAML = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
"""


def test_reapplying_a_service_merges_ports_by_port(
    kubectl: Path, cluster: DevCluster, tmp_path: Path
) -> None:
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(SERVICE_YAML)
    run(kubectl, cluster, "apply", "-f", str(manifest))
    manifest.write_text(SERVICE_YAML.replace("targetPort: 8443", "targetPort: 9443"))
    run(kubectl, cluster, "apply", "-f", str(manifest))
    svc = json.loads(run(kubectl, cluster, "get", "service", "web", "-o", "json").stdout)
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(80, 8080), (443, 9443)]


def test_get_pods_in_chunks_lists_every_pod(
    kubectl: Path, cluster: DevCluster, tmp_path: Path
) -> None:
    names = ["p5", "p1", "p4", "p2", "p3"]
    manifest = tmp_path / "pods.yaml"
    manifest.write_text(
        "\n---\n".join(POD_YAML.replace("name: web", f"name: {n}", 1) for n in names)
    )
    run(kubectl, cluster, "apply", "-f", str(manifest))
    # -v=6 logs each request: the list really goes in pages of two
    table = run(kubectl, cluster, "get", "pods", "--chunk-size=2", "-v=6")
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == sorted(names)
    assert table.stderr.count("limit=2") == 3
    assert table.stderr.count("continue=") == 2
    as_json = json.loads(
        run(kubectl, cluster, "get", "pods", "--chunk-size=2", "-o", "json").stdout
    )
    assert [i["metadata"]["name"] for i in as_json["items"]] == sorted(names)
