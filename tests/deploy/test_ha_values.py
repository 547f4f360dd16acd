"""The standby hub, deployed: ``helm-values/ha.yaml`` and the chart ``helm-values/hub-standby``.

The real Zero to JupyterHub 4.4.0 chart is rendered by the real helm with the overlay,
the site file, ``db-postgres.yaml`` and ``ha.yaml``; its hub Deployment goes to the
companion chart as the documentation says (``--set-file hubDeployment=...``), and
everything rendered is validated strictly against Kubernetes 1.32. Then: the hub runs
``lsst-hub-ha`` (the real command-line parser reads the rendered command), the standby's
pod is the chart's pod but for the two documented differences (with the example site
and with a site using every hub setting that shapes the pod), the two pods avoid each
other's node, the hub Service sends traffic to whichever is Ready, the Role grants the
Lease and nothing more, and sqlite is refused at three places (the chart's render, the
companion's render, the hub's configuration).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart_support import (
    CHART,
    HELM_BIN,
    HELM_VALUES,
    KUBERNETES_VERSION,
    NAMESPACE,
    RELEASE,
    ROOT,
    Obj,
    container,
    find,
    helm,
    render,
    values_args,
)

pytestmark = pytest.mark.line_independent

HA = HELM_VALUES / "ha.yaml"
DB = HELM_VALUES / "db-postgres.yaml"
STANDBY_CHART = HELM_VALUES / "hub-standby"
STANDBY_RELEASE = "jhub-standby"
STANDBY_LABEL = "lsst-hub/standby"
HUB_IMAGE_DOCKERFILE = HELM_VALUES / "z2jh" / "hub-image-4.4.0" / "Dockerfile"

# A site that sets every hub value that shapes the hub pod: the standby must mirror
# all of it, not only what the example site sets.
EVERY_POD_SETTING = {
    "hub": {
        "labels": {"team": "science-platform"},
        "annotations": {"example.org/owner": "hub-admins"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "hub", "effect": "NoSchedule"}
        ],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "image": {"pullPolicy": "IfNotPresent", "pullSecrets": ["harbor-pull"]},
        "initContainers": [{"name": "wait", "image": "busybox:1.36", "command": ["true"]}],
        "extraContainers": [
            {"name": "sidecar", "image": "busybox:1.36", "command": ["sleep", "infinity"]}
        ],
        "extraFiles": {"motd": {"mountPath": "/etc/motd", "stringData": "hello"}},
        "existingSecret": "hub-site-secret",
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
        "revisionHistoryLimit": 3,
        "extraPodSpec": {"terminationGracePeriodSeconds": 45, "dnsPolicy": "ClusterFirst"},
    },
    "scheduling": {"podPriority": {"enabled": True}},
    "debug": {"enabled": True},
}


# -- rendering ------------------------------------------------------------------------


def helm_fails(*args: str | Path) -> str:
    """Run helm expecting it to fail; what it printed."""
    result = subprocess.run(
        [str(HELM_BIN), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0, f"helm {' '.join(map(str, args))} succeeded"
    return result.stdout + result.stderr


def documents(text: str) -> list[Obj]:
    return [o for o in yaml.safe_load_all(text) if o]


def render_standby(main: str, directory: Path) -> list[Obj]:
    """The companion chart's objects, given the main release's rendering ``main``."""
    path = directory / "hub-deployment.yaml"
    path.write_text(main)
    out = helm(
        "template", STANDBY_RELEASE, STANDBY_CHART, "--namespace", NAMESPACE,
        "--set-file", f"hubDeployment={path}",
    )  # fmt: skip
    return documents(out)


class Rendered:
    """The main release (chart + ``ha.yaml``) and the standby release, rendered once."""

    def __init__(self, directory: Path, *extra: Path) -> None:
        self.text = helm(
            "template", RELEASE, CHART, "--namespace", NAMESPACE, *values_args(DB, HA, *extra)
        )
        self.objects = documents(self.text)
        self.main = find(self.objects, "Deployment", "hub")
        self.standby_objects = render_standby(yaml.safe_dump(self.main), directory)
        self.standby = find(self.standby_objects, "Deployment", "hub-standby")

    def pod(self, deployment: Obj) -> Obj:
        return dict(deployment["spec"]["template"]["spec"])


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return Rendered(tmp_path_factory.mktemp("ha"))


@pytest.fixture(scope="module")
def every_setting(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    directory = tmp_path_factory.mktemp("ha-every")
    site = directory / "every-pod-setting.yaml"
    site.write_text(yaml.safe_dump(EVERY_POD_SETTING))
    return Rendered(directory, site)


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels, matchExpressions) selects ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "s", "operator": "DoesNotExist"}]}, {"a": "1"}, True),
        ({"matchExpressions": [{"key": "s", "operator": "DoesNotExist"}]}, {"s": "x"}, False),
        ({"matchExpressions": [{"key": "s", "operator": "Exists"}]}, {"s": "x"}, True),
        ({"matchExpressions": [{"key": "s", "operator": "In", "values": ["x"]}]}, {}, False),
        ({"matchExpressions": [{"key": "s", "operator": "NotIn", "values": ["x"]}]}, {}, True),
    ],
)
def test_selects_follows_label_selector_rules(
    selector: Obj, labels: dict[str, str], expected: bool
) -> None:
    assert selects(selector, labels) is expected


def pod_labels(deployment: Obj) -> dict[str, str]:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert isinstance(labels, dict)
    return labels


# -- helm and Kubernetes ----------------------------------------------------------------


def test_helm_lint_strict(ha: Rendered, tmp_path: Path) -> None:
    out = helm("lint", "--strict", CHART, "--namespace", NAMESPACE, *values_args(DB, HA))
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    main = tmp_path / "hub-deployment.yaml"
    main.write_text(yaml.safe_dump(ha.main))
    out = helm(
        "lint", "--strict", STANDBY_CHART, "--namespace", NAMESPACE,
        "--set-file", f"hubDeployment={main}",
    )  # fmt: skip
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("which", ["ha", "every_setting"])
def test_rendered_objects_are_valid_kubernetes(which: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(which)
    assert [o["kind"] for o in rendered.standby_objects] == ["Role", "RoleBinding", "Deployment"]
    for obj in [*rendered.objects, *rendered.standby_objects]:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.message}")


def test_overlay_validates_against_both_chart_lines() -> None:
    # helm checks 4.4.0's schema when rendering; the 5.0 line's is checked here too.
    from tests.deploy.test_helm_values import coalesce, schema_errors

    values: Obj = {}
    for path in (HELM_VALUES / "values.yaml", DB, HA):
        values = coalesce(values, yaml.safe_load(path.read_text()))
    for line in ("4.4.0", "5.0.0-0.dev"):
        assert schema_errors(line, values) == [], line


# -- the hub runs through the wrapper -----------------------------------------------------


def image_entrypoint() -> list[str]:
    """The chart's hub image's ENTRYPOINT (the repository's hub image keeps it)."""
    (line,) = [
        x for x in HUB_IMAGE_DOCKERFILE.read_text().splitlines() if x.startswith("ENTRYPOINT")
    ]
    entrypoint = json.loads(line.removeprefix("ENTRYPOINT"))
    assert isinstance(entrypoint, list)
    ours = (HELM_VALUES / "hub-image" / "Dockerfile").read_text()
    assert "ENTRYPOINT" not in ours
    return entrypoint


def test_hub_runs_lsst_hub_ha_before_the_charts_hub_command(
    ha: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lsst_hub.ha.cli import parse_args

    hub = container(ha.pod(ha.main), "hub")
    # The chart's own hub command line, as it renders it without ha.yaml: the image's
    # entrypoint, then the chart's args.
    plain = container(find(render(DB), "Deployment", "hub")["spec"]["template"]["spec"], "hub")
    assert "command" not in plain
    chart_command = plain["args"]
    assert chart_command[:3] == [
        "jupyterhub",
        "--config",
        "/usr/local/etc/jupyterhub/jupyterhub_config.py",
    ]

    argv = [*hub["command"], *hub["args"]]
    entrypoint = image_entrypoint()
    assert argv[: len(entrypoint)] == entrypoint  # tini still reaps and passes signals on
    wrapper = argv[len(entrypoint) :]
    assert wrapper[0] == "lsst-hub-ha"
    split = wrapper.index("--")
    assert wrapper[split + 1 :] == chart_command

    # The real parser reads it: the Lease, this pod's name and namespace (as the pod's
    # environment gives them), the hub's command line.
    env = {e["name"]: e for e in hub["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    monkeypatch.setenv("POD_NAME", "hub-7d9f-abcde")
    monkeypatch.setenv("POD_NAMESPACE", NAMESPACE)
    settings, command = parse_args(wrapper[1:])
    assert command == chart_command
    assert settings.lease_name == "hub-leader"
    assert settings.lease_namespace == NAMESPACE
    assert settings.identity == "hub-7d9f-abcde"
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (10, 7, 2)
    # Kubernetes gives the pod its grace period (30 s unless set) between SIGTERM and
    # SIGKILL: the wrapper must stop the hub and release the Lease within it.
    grace = ha.pod(ha.main).get("terminationGracePeriodSeconds", 30)
    assert settings.stop_timeout + settings.retry_period < grace


def test_the_console_script_is_the_wrapper() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["lsst-hub-ha"] == "lsst_hub.ha.cli:main"


def test_probes_strategy_and_replicas(ha: Rendered) -> None:
    for deployment in (ha.main, ha.standby):
        assert deployment["spec"]["replicas"] == 1
        # The old pod goes first: its wrapper releases the Lease at once.
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        hub = container(ha.pod(deployment), "hub")
        # Ready only when the hub answers, i.e. on the leader.
        ready = hub["readinessProbe"]
        assert ready["httpGet"] == {"path": "/hub/health", "port": "http"}
        assert ready["periodSeconds"] <= 2
        # No liveness probe: it would kill the standby, whose hub never answers.
        assert "livenessProbe" not in hub
    plain = container(find(render(DB), "Deployment", "hub")["spec"]["template"]["spec"], "hub")
    assert plain["livenessProbe"]["httpGet"] == plain["readinessProbe"]["httpGet"]


# -- the standby mirrors the chart's hub pod ---------------------------------------------


def without_documented_differences(deployment: Obj) -> Obj:
    """The pod template less the label and the pod anti-affinity (each checked elsewhere)."""
    template = copy.deepcopy(deployment["spec"]["template"])
    template["metadata"]["labels"].pop(STANDBY_LABEL, None)
    affinity = template["spec"]["affinity"]
    del affinity["podAntiAffinity"]
    return dict(template)


@pytest.mark.parametrize("which", ["ha", "every_setting"])
def test_standby_pod_is_the_charts_pod(which: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(which)
    main, standby = rendered.main, rendered.standby
    assert pod_labels(standby) == {**pod_labels(main), STANDBY_LABEL: "true"}
    assert STANDBY_LABEL not in pod_labels(main)
    assert without_documented_differences(standby) == without_documented_differences(main)
    # The Deployment around it: its own name and selector, the same strategy.
    assert standby["metadata"]["name"] == "hub-standby"
    assert standby["spec"]["selector"]["matchLabels"] == {
        **main["spec"]["selector"]["matchLabels"],
        STANDBY_LABEL: "true",
    }
    assert standby["spec"]["strategy"] == main["spec"]["strategy"]
    assert standby["spec"].get("revisionHistoryLimit") == main["spec"].get("revisionHistoryLimit")


def test_every_pod_setting_reaches_both_pods(every_setting: Rendered) -> None:
    # The comparison above would miss a setting the chart dropped from both pods.
    for deployment in (every_setting.main, every_setting.standby):
        pod = every_setting.pod(deployment)
        assert pod_labels(deployment)["team"] == "science-platform"
        assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
        assert {c["name"] for c in pod["containers"]} == {"hub", "sidecar"}
        assert [c["name"] for c in pod["initContainers"]] == ["wait"]
        assert pod["imagePullSecrets"] == [{"name": "harbor-pull"}]
        assert pod["priorityClassName"]
        assert pod["terminationGracePeriodSeconds"] == 45
        assert {v["name"] for v in pod["volumes"]} >= {"existing-secret", "files"}
        hub = container(pod, "hub")
        assert hub["resources"]["limits"] == {"memory": "2Gi"}
        assert "--debug" in hub["args"]


def test_standby_pod_differs_when_the_site_changes(ha: Rendered, every_setting: Rendered) -> None:
    # The mirror follows the main release's rendering: another site, another standby.
    assert without_documented_differences(ha.standby) != without_documented_differences(
        every_setting.standby
    )


def test_standby_reads_each_documented_input(ha: Rendered, tmp_path: Path) -> None:
    expected = ha.standby_objects
    # The whole "helm template" output (the same rendering: the same generated secrets).
    assert render_standby(ha.text, tmp_path) == expected
    # "kubectl get deployment hub -o yaml": namespace, status and server fields.
    live = copy.deepcopy(ha.main)
    live["metadata"].update(namespace=NAMESPACE, generation=3, uid="0c4d-1f")
    live["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "3"}
    live["status"] = {"replicas": 1, "readyReplicas": 1}
    assert render_standby(yaml.safe_dump(live), tmp_path) == expected
    # "helm template ... --show-only templates/hub/deployment.yaml": a rendering of its
    # own, so the generated secrets, and the checksum of the Secret, differ.
    show_only = helm(
        "template", RELEASE, CHART, "--namespace", NAMESPACE, *values_args(DB, HA),
        "--show-only", "templates/hub/deployment.yaml",
    )  # fmt: skip
    assert show_only.lstrip().startswith("---\n# Source:")
    standby = find(render_standby(show_only, tmp_path), "Deployment", "hub-standby")
    sums = [
        d["spec"]["template"]["metadata"]["annotations"].pop("checksum/secret")
        for d in (documents(show_only)[0], standby)
    ]
    assert sums[0] == sums[1]  # copied from its input, as every other annotation
    ha_standby = copy.deepcopy(ha.standby)
    ha_standby["spec"]["template"]["metadata"]["annotations"].pop("checksum/secret")
    assert standby == ha_standby


# -- one hub per node, and the Service -----------------------------------------------------


def required_anti_affinity(deployment: Obj) -> list[Obj]:
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in affinity
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]
    assert isinstance(terms, list)
    return terms


@pytest.mark.parametrize("which", ["ha", "every_setting"])
def test_required_anti_affinity_both_ways(which: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(which)
    pods = {"main": pod_labels(rendered.main), "standby": pod_labels(rendered.standby)}
    for this, other in (("main", "standby"), ("standby", "main")):
        deployment = rendered.main if this == "main" else rendered.standby
        (term,) = required_anti_affinity(deployment)
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert "namespaces" not in term and "namespaceSelector" not in term  # this namespace
        assert selects(term["labelSelector"], pods[other]), f"{this} does not avoid {other}"
        assert not selects(term["labelSelector"], pods[this]), f"{this} avoids itself"


def test_core_pods_keep_the_charts_node_preference(tmp_path: Path) -> None:
    # ha.yaml moves the chart's core-node preference into each core pod's extraPodSpec
    # (to add the hub's anti-affinity): every core pod still gets the same nodeAffinity.
    tls = HELM_VALUES / "tls-letsencrypt.yaml"
    plain = render(DB, tls)
    with_ha = documents(
        helm("template", RELEASE, CHART, "--namespace", NAMESPACE, *values_args(DB, tls, HA))
    )
    for name in ("hub", "proxy", "autohttps"):
        before = find(plain, "Deployment", name)["spec"]["template"]["spec"]["affinity"]
        after = find(with_ha, "Deployment", name)["spec"]["template"]["spec"]["affinity"]
        assert before["nodeAffinity"] == after["nodeAffinity"], name
        assert before["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]


def test_hub_service_and_network_policy_select_both_pods(ha: Rendered) -> None:
    main, standby = pod_labels(ha.main), pod_labels(ha.standby)
    service = find(ha.objects, "Service", "hub")
    selector = {"matchLabels": service["spec"]["selector"]}
    # Both pods are endpoints of the hub Service; only a Ready one (the leader) serves.
    assert selects(selector, main) and selects(selector, standby)
    policy = find(ha.objects, "NetworkPolicy", "hub")
    assert selects(policy["spec"]["podSelector"], main)
    assert selects(policy["spec"]["podSelector"], standby)
    # The chart's proxy lets the standby reach its API and the notebooks, as the hub.
    for name in ("proxy", "singleuser"):
        rules = find(ha.objects, "NetworkPolicy", name)["spec"]["ingress"]
        peers = [p["podSelector"] for r in rules for p in r.get("from", []) if "podSelector" in p]
        assert any(selects(p, standby) for p in peers), name
    # The overlap docs/how-to/high-availability.md explains: the chart's Deployment's
    # selector matches the standby's pods (its ReplicaSet leaves pods another
    # controller owns), the standby's does not match the chart's pod.
    assert selects(ha.main["spec"]["selector"], standby)
    assert not selects(ha.standby["spec"]["selector"], main)


# -- the Lease's RBAC -------------------------------------------------------------------------


def test_role_grants_the_lease_and_nothing_more(ha: Rendered) -> None:
    role = find(ha.standby_objects, "Role", "hub-leader-lease")
    granted = {
        (group, resource, verb, tuple(rule.get("resourceNames", [])))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # The wrapper reads, creates and renews (and releases) its one Lease; create cannot
    # be narrowed to a name.
    lease = ("hub-leader",)
    assert granted == {
        ("coordination.k8s.io", "leases", "get", lease),
        ("coordination.k8s.io", "leases", "update", lease),
        ("coordination.k8s.io", "leases", "create", ()),
    }
    hub = container(ha.pod(ha.main), "hub")
    assert f"--lease-name={lease[0]}" in hub["command"]

    binding = find(ha.standby_objects, "RoleBinding", "hub-leader-lease")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hub-leader-lease",
    }  # fmt: skip
    account = ha.pod(ha.main)["serviceAccountName"]
    assert account == find(ha.objects, "ServiceAccount", account)["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]
    assert ha.pod(ha.standby)["serviceAccountName"] == account


def test_role_follows_the_lease_name_in_the_command(ha: Rendered, tmp_path: Path) -> None:
    main = copy.deepcopy(ha.main)
    command = container(main["spec"]["template"]["spec"], "hub")["command"]
    at = command.index("--lease-name=hub-leader")
    command[at : at + 1] = ["--lease-name", "science-hub"]
    role = find(render_standby(yaml.safe_dump(main), tmp_path), "Role", "hub-leader-lease")
    assert [r.get("resourceNames") for r in role["rules"]] == [None, ["science-hub"]]
    # No --lease-name: the wrapper's default.
    del command[at : at + 2]
    role = find(render_standby(yaml.safe_dump(main), tmp_path), "Role", "hub-leader-lease")
    assert [r.get("resourceNames") for r in role["rules"]] == [None, ["jupyterhub-hub"]]


# The wrapper's own Lease calls (lsst_hub.ha.lease) with the hub ServiceAccount's token,
# in a devcluster that enforces RBAC and holds the chart's ServiceAccount and the
# standby chart's Role and RoleBinding: what each (verb, Lease) of the Role is for.
LEASE_OPERATIONS = ["take", "renew", "watch as the standby", "release", "no other lease"]


async def lease_operations(
    make_devcluster: Callable[..., Awaitable[Any]],
    ha: Rendered,
    role: Obj,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, bool]:
    """Which of :data:`LEASE_OPERATIONS` work with ``role`` in place of the chart's."""
    from kubernetes_asyncio import client

    from lsst_hub.ha.cli import parse_args
    from lsst_hub.ha.lease import LeaseCandidate

    cluster = await make_devcluster(rbac=True, nodes=1)
    account = ha.pod(ha.main)["serviceAccountName"]
    binding = find(ha.standby_objects, "RoleBinding", role["metadata"]["name"])
    async with cluster.api_client() as admin:
        core: Any = client.CoreV1Api(admin)
        rbac: Any = client.RbacAuthorizationV1Api(admin)
        await core.create_namespace({"metadata": {"name": NAMESPACE}})
        await core.create_namespaced_service_account(
            NAMESPACE, find(ha.objects, "ServiceAccount", account)
        )
        await rbac.create_namespaced_role(NAMESPACE, role)
        await rbac.create_namespaced_role_binding(NAMESPACE, binding)
    token = cluster.authorizer.issue(NAMESPACE, account)

    hub = container(ha.pod(ha.main), "hub")
    options = hub["command"][hub["command"].index("lsst-hub-ha") + 1 :]
    settings = {}
    for pod in ("hub-leader-pod", "hub-standby-pod"):
        # The pod's environment, as the chart gives it (POD_NAME from ha.yaml).
        monkeypatch.setenv("POD_NAME", pod)
        monkeypatch.setenv("POD_NAMESPACE", NAMESPACE)
        settings[pod], _ = parse_args([*options, *hub["args"]])
    works: dict[str, bool] = {}
    async with cluster.api_client(token=token) as api:
        leader = LeaseCandidate(settings["hub-leader-pod"], api)
        standby = LeaseCandidate(settings["hub-standby-pod"], api)
        works["take"] = (await leader.attempt(5)).held
        works["renew"] = works["take"] and (await leader.attempt(5)).held
        seen = await standby.attempt(5)
        works["watch as the standby"] = not seen.held and seen.holder == "hub-leader-pod"
        works["release"] = works["take"] and await leader.release(5)
        other = dataclasses.replace(settings["hub-leader-pod"], lease_name="some-other-lease")
        works["no other lease"] = not (await LeaseCandidate(other, api).attempt(5)).held
    return works


async def test_the_role_lets_the_wrapper_hold_its_lease(
    make_devcluster: Callable[..., Awaitable[Any]], ha: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = find(ha.standby_objects, "Role", "hub-leader-lease")
    works = await lease_operations(make_devcluster, ha, role, monkeypatch)
    assert works == dict.fromkeys(LEASE_OPERATIONS, True)


@pytest.mark.parametrize("verb", ["get", "create", "update"])
async def test_each_verb_of_the_role_is_needed(
    make_devcluster: Callable[..., Awaitable[Any]],
    ha: Rendered,
    monkeypatch: pytest.MonkeyPatch,
    verb: str,
) -> None:
    role = copy.deepcopy(find(ha.standby_objects, "Role", "hub-leader-lease"))
    for rule in role["rules"]:
        rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    role["rules"] = [r for r in role["rules"] if r["verbs"]]
    works = await lease_operations(make_devcluster, ha, role, monkeypatch)
    # Without get nothing can be read; without create the first leader cannot make the
    # Lease; without update it cannot renew or release it.
    failing = {"get": {"take", "renew", "watch as the standby", "release"},
               "create": {"take", "renew", "watch as the standby", "release"},
               "update": {"renew", "release"}}[verb]  # fmt: skip
    assert {op for op, ok in works.items() if not ok} == failing


# -- what is refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "db",
    [
        [],  # the overlay's default: sqlite on the chart's claim
        ["-f", str(DB), "--set", "hub.db.type=sqlite-pvc"],
        ["-f", str(DB), "--set", "hub.db.type=sqlite-memory"],
    ],
)
def test_chart_with_ha_refuses_sqlite(db: list[str]) -> None:
    args = [*values_args(), *db, "-f", str(HA)]
    out = helm_fails("template", RELEASE, CHART, "--namespace", NAMESPACE, *args)
    assert "helm-values/ha.yaml needs hub.db.type postgres" in out
    assert "sqlite" in out


def standby_refusal(main: Obj | str, tmp_path: Path, *extra: str) -> str:
    path = tmp_path / "hub-deployment.yaml"
    path.write_text(main if isinstance(main, str) else yaml.safe_dump(main))
    return helm_fails(
        "template", STANDBY_RELEASE, STANDBY_CHART, "--namespace", NAMESPACE,
        "--set-file", f"hubDeployment={path}", *extra,
    )  # fmt: skip


def test_standby_refuses_a_hub_that_does_not_take_part(tmp_path: Path) -> None:
    # The chart without ha.yaml: a standby beside it would be a second active hub.
    plain = find(render(DB), "Deployment", "hub")
    assert "does not run lsst-hub-ha" in standby_refusal(plain, tmp_path)


def test_standby_refuses_a_hub_on_a_claim(ha: Rendered, tmp_path: Path) -> None:
    main = copy.deepcopy(ha.main)
    main["spec"]["template"]["spec"]["volumes"].append(
        {"name": "pvc", "persistentVolumeClaim": {"claimName": "hub-db-dir"}}
    )
    assert "mounts the claim hub-db-dir" in standby_refusal(main, tmp_path)


def test_standby_refuses_other_inputs(ha: Rendered, tmp_path: Path) -> None:
    assert "hubDeployment" in standby_refusal("", tmp_path)
    assert "0 Deployments" in standby_refusal(
        yaml.safe_dump(find(ha.objects, "Service", "hub")), tmp_path
    )
    two = yaml.safe_dump(ha.main) + "---\n" + yaml.safe_dump(ha.main)
    assert "2 Deployments" in standby_refusal(two, tmp_path)
    elsewhere = copy.deepcopy(ha.main)
    elsewhere["metadata"]["namespace"] = "other"
    assert "install the standby in the hub's namespace" in standby_refusal(elsewhere, tmp_path)
    # The main release's values files given to the standby's chart by mistake.
    out = standby_refusal(ha.main, tmp_path, "-f", str(HELM_VALUES / "values.yaml"))
    assert "Additional property hub is not allowed" in out


@pytest.fixture
def ha_config_snippet() -> str:
    snippet = yaml.safe_load(HA.read_text())["hub"]["extraConfig"]["zz-lsst-hub-ha"]
    assert isinstance(snippet, str)
    # The chart runs hub.extraConfig in the order of the keys: this one last of the
    # overlay's, after everything that sets the hub's database or proxy.
    overlay = yaml.safe_load((HELM_VALUES / "values.yaml").read_text())["hub"]["extraConfig"]
    assert sorted([*overlay, "zz-lsst-hub-ha"])[-1] == "zz-lsst-hub-ha"
    return snippet


def run_snippet(snippet: str, settings: dict[str, dict[str, Any]]) -> None:
    from traitlets.config import Config

    c = Config()
    for section, values in settings.items():
        c[section].update(values)
    exec(compile(snippet, "extraConfig.zz-lsst-hub-ha", "exec"), {"c": c})  # noqa: S102


# What the chart's jupyterhub_config.py sets with hub.db.type postgres (hub.db.url).
CHART_HA_SETTINGS: dict[str, dict[str, Any]] = {
    "JupyterHub": {"db_url": "postgresql://jupyterhub@db.df.example.org:5432/jupyterhub",
                   "cleanup_servers": False},
    "ConfigurableHTTPProxy": {"should_start": False},
}  # fmt: skip


def test_hub_config_accepts_the_charts_postgres_settings(ha_config_snippet: str) -> None:
    run_snippet(ha_config_snippet, CHART_HA_SETTINGS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"JupyterHub": {"db_url": "sqlite:///jupyterhub.sqlite"}},
            "set hub.db.url (with hub.db.type: postgres",
        ),
        ({"JupyterHub": {"cleanup_servers": True}}, "hub.config.JupyterHub.cleanup_servers"),
        ({"ConfigurableHTTPProxy": {"should_start": True}}, "the chart's proxy pod is that proxy"),
    ],
)
def test_hub_config_refuses_what_breaks_a_handover(
    ha_config_snippet: str, change: dict[str, dict[str, Any]], message: str
) -> None:
    settings = {k: {**v, **change.get(k, {})} for k, v in CHART_HA_SETTINGS.items()}
    with pytest.raises(RuntimeError, match=r"helm-values/ha\.yaml") as info:
        run_snippet(ha_config_snippet, settings)
    assert message in str(info.value)


def test_hub_config_refuses_no_database_url(ha_config_snippet: str) -> None:
    # hub.db.type postgres without hub.db.url: JupyterHub would use its sqlite default.
    settings = copy.deepcopy(CHART_HA_SETTINGS)
    del settings["JupyterHub"]["db_url"]
    with pytest.raises(RuntimeError, match="sqlite"):
        run_snippet(ha_config_snippet, settings)
