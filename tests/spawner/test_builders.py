"""Pure builders: identity to securityContext, home PV/PVC, passwd, node pinning."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient
from kubespawner.objects import make_pod

from lsst_hub.identity import Group, Identity
from lsst_hub.spawner import builders
from tests.spawner.pss import restricted_violations

ALICE = Identity(
    username="alice",
    ldap_dn="uid=alice,ou=people,dc=example,dc=org",
    uid_number=20001,
    gid_number=20001,
    home_directory="/gpfs/home/alice",
    groups=(Group("hpcusers", 30000), Group("jupyterhub-users"), Group("alice", 20001)),
    display_name="Alice Test",
)


def kubespawner_pod(**overrides: Any) -> dict[str, Any]:
    """The pod KubeSpawner's own builder makes, in JSON form (needs a running loop)."""
    kwargs: dict[str, Any] = dict(
        name="jupyter-alice",
        cmd=["jupyterhub-singleuser"],
        port=8888,
        image="quay.io/jupyter/base-notebook:latest",
        image_pull_policy="IfNotPresent",
        image_pull_secrets=[],
        node_selector={},
        uid=None,
        gid=None,
        fs_gid=None,
        privileged=False,
        env={"A": "b"},
        working_dir=None,
        labels={"component": "singleuser-server"},
    )
    kwargs.update(overrides)
    pod = make_pod(**kwargs)
    result: dict[str, Any] = ApiClient().sanitize_for_serialization(pod)
    return result


def plan(**kw: Any) -> builders.PodPlan:
    volume, mount = builders.user_home_volume("home-alice", "/gpfs/home/alice")
    args: dict[str, Any] = dict(
        identity=ALICE, home="/gpfs/home/alice", volumes=(volume,), mounts=(mount,)
    )
    args.update(kw)
    return builders.PodPlan(**args)


async def test_pod_runs_as_the_person() -> None:
    pod = builders.personalize_pod(kubespawner_pod(), plan())
    psc = pod["spec"]["securityContext"]
    assert psc["runAsUser"] == 20001
    assert psc["runAsGroup"] == 20001
    assert psc["runAsNonRoot"] is True
    assert psc["supplementalGroups"] == [20001, 30000]
    assert "fsGroup" not in psc
    (container,) = pod["spec"]["containers"]
    csc = container["securityContext"]
    assert (csc["runAsUser"], csc["runAsGroup"]) == (20001, 20001)
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert container["workingDir"] == "/gpfs/home/alice"
    assert {"name": "home", "mountPath": "/gpfs/home/alice"} in container["volumeMounts"]


async def test_configured_root_and_fsgroup_are_overridden() -> None:
    raw = kubespawner_pod(uid=0, gid=0, fs_gid=100, privileged=True,
                          allow_privilege_escalation=True)  # fmt: skip
    assert raw["spec"]["securityContext"]["fsGroup"] == 100
    pod = builders.personalize_pod(raw, plan())
    assert "fsGroup" not in pod["spec"]["securityContext"]
    csc = pod["spec"]["containers"][0]["securityContext"]
    assert csc["runAsUser"] == 20001
    assert csc["privileged"] is False
    assert restricted_violations(pod) == []


async def test_kubespawner_pod_alone_is_not_restricted() -> None:
    # The checker must be able to fail: KubeSpawner's default pod does not pass.
    assert restricted_violations(kubespawner_pod())


async def test_personalized_pod_satisfies_restricted_with_init_containers() -> None:
    raw = kubespawner_pod(init_containers=[{"name": "setup", "image": "busybox"}])
    assert any("setup" in v for v in restricted_violations(raw))
    pod = builders.personalize_pod(raw, plan())
    assert restricted_violations(pod) == []


async def test_hostpath_volume_in_pod_would_break_restricted() -> None:
    pod = builders.personalize_pod(
        kubespawner_pod(), plan(volumes=({"name": "h", "hostPath": {"path": "/x"}},))
    )
    assert restricted_violations(pod) == ["volume h uses ['hostPath']"]


async def test_input_pod_is_not_modified() -> None:
    raw = kubespawner_pod()
    before = repr(raw)
    builders.personalize_pod(raw, plan(node="node-1", labels={"x": "y"}))
    assert repr(raw) == before


def test_env_names_the_person() -> None:
    assert builders.identity_env(ALICE, "/home/alice") == {
        "NB_USER": "alice",
        "NB_UID": "20001",
        "NB_GID": "20001",
        "HOME": "/home/alice",
    }


async def test_pin_to_node_alone() -> None:
    pod = builders.personalize_pod(kubespawner_pod(), plan(node="node-7"))
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                               "values": ["node-7"]}]}
    ]  # fmt: skip


def test_pin_to_node_ands_with_every_admin_term() -> None:
    admin = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]},
                ]
            }
        },
        "podAffinity": {"x": 1},
    }
    pinned = builders.pin_to_node(admin, "node-2")
    terms = pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert len(terms) == 2
    for term in terms:
        assert {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-2"]} in term[
            "matchExpressions"
        ]
    assert pinned["podAffinity"] == {"x": 1}
    assert len(admin["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"]) == 1  # fmt: skip


def pv(source: dict[str, Any] | None = None, claim: str = "home-alice") -> dict[str, Any]:
    src = source or builders.expand_source(
        {"hostPath": {"path": "{home_directory}", "type": "Directory"}}, ALICE, "/gpfs/home/alice"
    )
    return builders.home_pv(
        name="gpfs-home-alice", source=src, claim_namespace="jhub", claim_name=claim,
        capacity="1Gi", labels={"app.kubernetes.io/managed-by": "lsst-hub"},
    )  # fmt: skip


def test_home_pv_shape() -> None:
    spec = pv()["spec"]
    assert spec["hostPath"] == {"path": "/gpfs/home/alice", "type": "Directory"}
    assert spec["accessModes"] == ["ReadWriteMany"]
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["storageClassName"] == ""
    assert spec["claimRef"]["name"] == "home-alice"
    assert spec["claimRef"]["namespace"] == "jhub"


def test_csi_source_placeholders() -> None:
    template = {
        "csi": {
            "driver": "spectrumscale.csi.ibm.com",
            "volumeHandle": "0;2;{uid};{username};path={home_directory};{literal}",
            "volumeAttributes": {"owner": ["{username}"]},
        }
    }
    src = builders.expand_source(template, ALICE, "/gpfs/home/alice")
    assert src["csi"]["volumeHandle"] == "0;2;20001;alice;path=/gpfs/home/alice;{literal}"
    assert src["csi"]["volumeAttributes"]["owner"] == ["alice"]
    assert template["csi"]["volumeHandle"].startswith("0;2;{uid}")


def test_pvc_shape() -> None:
    pvc = builders.home_pvc(name="home-alice", namespace="jhub", pv_name="gpfs-home-alice",
                            capacity="1Gi", labels={"a": "b"})  # fmt: skip
    assert pvc["spec"]["volumeName"] == "gpfs-home-alice"
    assert pvc["spec"]["storageClassName"] == ""
    assert pvc["metadata"]["labels"] == {"a": "b"}


def with_server_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    obj = {**obj, "metadata": {**obj["metadata"], "uid": "u-1", "resourceVersion": "7"}}
    obj["spec"] = {**obj["spec"], "claimRef": {**obj["spec"]["claimRef"], "uid": "c-1"}}
    return obj


def test_same_pv_is_accepted_despite_server_defaults() -> None:
    assert builders.pv_mismatch(with_server_defaults(pv()), pv()) is None


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        (pv({"hostPath": {"path": "/gpfs/home/bob", "type": "Directory"}}), "spec.hostPath.path"),
        (pv({"nfs": {"server": "x", "path": "/gpfs/home/alice"}}), "spec.hostPath"),
        (pv(claim="home-bob"), "reserved for claim jhub/home-bob"),
    ],
)
def test_other_pv_is_refused(existing: dict[str, Any], message: str) -> None:
    reason = builders.pv_mismatch(existing, pv())
    assert reason is not None
    assert message in reason
    assert reason.startswith("PersistentVolume gpfs-home-alice is not this person's home")


def test_pv_with_delete_policy_is_refused() -> None:
    existing = pv()
    existing["spec"]["persistentVolumeReclaimPolicy"] = "Delete"
    assert "reclaim policy is Delete" in (builders.pv_mismatch(existing, pv()) or "")


def test_pvc_mismatch() -> None:
    good = builders.home_pvc(name="home-alice", namespace="jhub", pv_name="gpfs-home-alice",
                             capacity="1Gi", labels={})  # fmt: skip
    assert builders.pvc_mismatch(good, "gpfs-home-alice") is None
    assert "not to the home volume gpfs-home-bob" in (
        builders.pvc_mismatch(good, "gpfs-home-bob") or ""
    )
    good["spec"].pop("volumeName")
    assert "no fixed volume" in (builders.pvc_mismatch(good, "gpfs-home-alice") or "")


def test_shared_claim_volume_uses_subpath() -> None:
    volume, mount = builders.shared_home_volume("gpfs-homes", "a/alice", "/gpfs/home/a/alice")
    assert volume == {"name": "home", "persistentVolumeClaim": {"claimName": "gpfs-homes"}}
    assert mount["subPath"] == "a/alice"
    assert mount["mountPath"] == "/gpfs/home/a/alice"


def test_passwd_and_group_files() -> None:
    evil = Identity(
        username="eve", ldap_dn="", uid_number=20005, gid_number=20099,
        home_directory="/gpfs/home/eve", display_name="Eve\nroot:x:0:0::/:/bin/sh",
        groups=(Group("hpc:users", 30000), Group("nogid"), Group("dup", 30000)),
    )  # fmt: skip
    cm = builders.passwd_configmap(evil, name="passwd-eve", namespace="jhub",
                                   home="/gpfs/home/eve", labels={})  # fmt: skip
    passwd = cm["data"]["passwd"].splitlines()
    assert passwd[-1] == "eve:x:20005:20099:Eve root x 0 0  / /bin/sh:/gpfs/home/eve:/bin/bash"
    assert sum(line.startswith("root:") for line in passwd) == 1
    group = cm["data"]["group"].splitlines()
    assert "hpc users:x:30000:eve" in group
    assert "eve:x:20099:" in group
    assert not any(line.startswith("dup:") or line.startswith("nogid:") for line in group)
    volume, mounts = builders.passwd_volume("passwd-eve")
    assert volume["configMap"]["name"] == "passwd-eve"
    assert [m["mountPath"] for m in mounts] == ["/etc/passwd", "/etc/group"]
    assert all(m["readOnly"] for m in mounts)


def released(uid: str = "old-uid", name: str = "home-alice") -> dict[str, Any]:
    volume = pv()
    volume["spec"]["claimRef"].update(uid=uid, name=name, resourceVersion="3")
    volume["status"] = {"phase": "Released"}
    return volume


def claim(uid: str = "new-uid") -> dict[str, Any]:
    return {"metadata": {"name": "home-alice", "namespace": "jhub", "uid": uid}}


def test_released_volume_is_pointed_at_the_new_claim() -> None:
    new = builders.rebind_released(released(), claim())
    assert new is not None
    ref = new["spec"]["claimRef"]
    assert "uid" not in ref and "resourceVersion" not in ref
    assert (ref["namespace"], ref["name"]) == ("jhub", "home-alice")


@pytest.mark.parametrize(
    ("volume", "pvc"),
    [
        (released(name="home-bob"), claim()),  # another claim's volume: never
        (released(uid="new-uid"), claim()),  # already this claim
        ({**released(), "status": {"phase": "Bound"}}, claim()),  # not released
    ],
)
def test_released_volume_left_alone(volume: dict[str, Any], pvc: dict[str, Any]) -> None:
    assert builders.rebind_released(volume, pvc) is None


def _spec(pod: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = pod["spec"]
    return spec


def _notebook(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = _spec(pod)["containers"][0]
    return container


def _add_sidecar(pod: dict[str, Any]) -> None:
    # No securityContext of its own: it inherits the pod's, now root.
    _spec(pod)["containers"].append({"name": "side", "image": "x"})
    _spec(pod)["securityContext"]["runAsUser"] = 0


# Each change an admin's modify_pod_hook could make, and the sentence that names it.
HOOK_CHANGES: list[tuple[str, Any, str]] = [
    (
        "pod as root",
        lambda p: [
            _spec(p)["securityContext"].update(runAsUser=0),
            _notebook(p)["securityContext"].pop("runAsUser"),
        ],
        "runs as 0:20001",
    ),
    (
        "container as someone else",
        lambda p: _notebook(p)["securityContext"].update(runAsUser=20002),
        "runs as 20002:20001",
    ),
    (
        "other gid",
        lambda p: _notebook(p)["securityContext"].update(runAsGroup=0),
        "runs as 20001:0",
    ),
    ("privileged", lambda p: _notebook(p)["securityContext"].update(privileged=True), "privileges"),
    (
        "escalation",
        lambda p: _notebook(p)["securityContext"].pop("allowPrivilegeEscalation"),
        "privileges",
    ),
    (
        "capabilities",
        lambda p: _notebook(p)["securityContext"].update(capabilities={"add": ["SYS_ADMIN"]}),
        "adds capabilities",
    ),
    ("a root sidecar", lambda p: _add_sidecar(p), "container 'side' runs as 0:20001"),
    ("fsGroup", lambda p: _spec(p)["securityContext"].update(fsGroup=100), "fsGroup"),
    (
        "foreign group",
        lambda p: _spec(p)["securityContext"]["supplementalGroups"].append(0),
        "adds groups [0]",
    ),
    ("home unmounted", lambda p: _notebook(p).update(volumeMounts=[]), "no longer mounts"),
    (
        "node pin dropped",
        lambda p: _spec(p).pop("affinity"),
        "no longer pinned to node-3",
    ),
    # -- the rest of what keeps a pod confined ------------------------------------
    ("hostPID", lambda p: _spec(p).update(hostPID=True), "sets hostPID"),
    ("hostNetwork", lambda p: _spec(p).update(hostNetwork=True), "sets hostNetwork"),
    ("hostIPC", lambda p: _spec(p).update(hostIPC=True), "sets hostIPC"),
    (
        "hostPath volume",
        lambda p: _spec(p)["volumes"].append({"name": "root", "hostPath": {"path": "/"}}),
        "volume 'root' is the node's directory /",
    ),
    (
        "seccomp unconfined on the pod",
        lambda p: _spec(p)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        "the pod sets seccomp Unconfined",
    ),
    (
        "seccomp unconfined on a container",
        lambda p: _notebook(p)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        "container 'notebook' sets seccomp Unconfined",
    ),
    (
        "seccomp unconfined by annotation",
        lambda p: (
            p["metadata"]
            .setdefault("annotations", {})
            .update({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})
        ),
        "annotation seccomp.security.alpha.kubernetes.io/pod",
    ),
    (
        "AppArmor unconfined",
        lambda p: _notebook(p)["securityContext"].update(appArmorProfile={"type": "Unconfined"}),
        "sets AppArmor Unconfined",
    ),
    (
        "SELinux super-privileged type",
        lambda p: _spec(p)["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
        "SELinux type spc_t",
    ),
    (
        "runAsNonRoot false on the pod",
        lambda p: _spec(p)["securityContext"].update(runAsNonRoot=False),
        "the pod sets runAsNonRoot false",
    ),
    (
        "runAsNonRoot false on a container",
        lambda p: _notebook(p)["securityContext"].update(runAsNonRoot=False),
        "container 'notebook' sets runAsNonRoot false",
    ),
    (
        "procMount unmasked",
        lambda p: _notebook(p)["securityContext"].update(procMount="Unmasked"),
        "sets procMount Unmasked",
    ),
    (
        "hostPort",
        lambda p: _notebook(p).update(ports=[{"containerPort": 1, "hostPort": 22}]),
        "opens hostPort 22",
    ),
    (
        "init container with procMount unmasked",
        lambda p: _spec(p).update(initContainers=[_as_person("setup", procMount="Unmasked")]),
        "init container 'setup' sets procMount Unmasked",
    ),
    (
        "privileged ephemeral container",
        lambda p: _spec(p).update(ephemeralContainers=[_as_person("debug", privileged=True)]),
        "ephemeral container 'debug' may gain privileges",
    ),
    (
        "ephemeral container with seccomp unconfined",
        lambda p: _spec(p).update(
            ephemeralContainers=[_as_person("debug", seccompProfile={"type": "Unconfined"})]
        ),
        "ephemeral container 'debug' sets seccomp Unconfined",
    ),
    (
        "someone else's home claim",
        lambda p: _volume(p, "home").update(persistentVolumeClaim={"claimName": "home-bob"}),
        "volume 'home' is",
    ),
    (
        "home volume replaced by a directory of the node",
        lambda p: [
            _volume(p, "home").pop("persistentVolumeClaim"),
            _volume(p, "home").update(hostPath={"path": "/gpfs/home/bob"}),
        ],
        "not the person's own",
    ),
    (
        "home mounted from another volume",
        lambda p: [
            _spec(p)["volumes"].append({"name": "scratch", "emptyDir": {}}),
            _mount(p, "/gpfs/home/alice").update(name="scratch"),
        ],
        "mounts /gpfs/home/alice from 'scratch'",
    ),
    (
        "home mounted from a directory of the claim",
        lambda p: _mount(p, "/gpfs/home/alice").update(subPath="../bob"),
        "mounts /gpfs/home/alice from 'home' subPath '../bob'",
    ),
    # -- no root, no system ids (whatever the identity) -------------------------------
    (
        "supplemental group 0",
        lambda p: _spec(p)["securityContext"]["supplementalGroups"].append(0),
        "supplementalGroups: group id 0 is in refused_gids",
    ),
    (
        "fsGroup 0",
        lambda p: _spec(p)["securityContext"].update(fsGroup=0),
        "fsGroup: group id 0 is in refused_gids",
    ),
    (
        "gid 0",
        lambda p: _notebook(p)["securityContext"].update(runAsGroup=0),
        "container 'notebook' runs as gid 0, below min_gid (1000)",
    ),
    (
        "a system uid",
        lambda p: _notebook(p)["securityContext"].update(runAsUser=999),
        "container 'notebook' runs as uid 999, below min_uid (1000)",
    ),
]


def _as_person(name: str, **context: Any) -> dict[str, Any]:
    """A container that would pass but for ``context``."""
    base = builders.container_security_context(ALICE)
    base.update(context)
    return {"name": name, "image": "busybox", "securityContext": base}


def _volume(pod: dict[str, Any], name: str) -> dict[str, Any]:
    volume: dict[str, Any] = next(v for v in _spec(pod)["volumes"] if v["name"] == name)
    return volume


def _mount(pod: dict[str, Any], path: str) -> dict[str, Any]:
    mount: dict[str, Any] = next(
        m for m in _notebook(pod)["volumeMounts"] if m["mountPath"] == path
    )
    return mount


async def test_personalized_pod_keeps_every_promise() -> None:
    assert (
        builders.pod_violations(builders.personalize_pod(kubespawner_pod(), plan()), plan()) == []
    )
    pinned = plan(node="node-3")
    assert (
        builders.pod_violations(builders.personalize_pod(kubespawner_pod(), pinned), pinned) == []
    )


@pytest.mark.parametrize(
    ("change", "sentence"), [c[1:] for c in HOOK_CHANGES], ids=[c[0] for c in HOOK_CHANGES]
)
async def test_hook_changes_are_found(change: Any, sentence: str) -> None:
    pinned = plan(node="node-3")
    pod = builders.personalize_pod(kubespawner_pod(), pinned)
    change(pod)
    problems = builders.pod_violations(pod, pinned)
    assert any(sentence in p for p in problems), problems


async def test_harmless_hook_changes_pass() -> None:
    pinned = plan(node="node-3")
    pod = builders.personalize_pod(kubespawner_pod(), pinned)
    pod["metadata"].setdefault("annotations", {})["site/owner"] = "alice"
    _notebook(pod)["env"].append({"name": "EXTRA", "value": "1"})
    _spec(pod)["securityContext"]["supplementalGroups"] = [30000]  # fewer groups is fine
    assert builders.pod_violations(pod, pinned) == []


# -- one pass over placeholders ---------------------------------------------------


def test_home_holding_a_placeholder_is_mounted_as_written() -> None:
    # Checked as "/gpfs/home/{uid}", it must not be mounted as /gpfs/home/20001.
    template = {"hostPath": {"path": "{home_directory}", "type": "Directory"}}
    src = builders.expand_source(template, ALICE, "/gpfs/home/{uid}")
    assert src["hostPath"]["path"] == "/gpfs/home/{uid}"
    assert builders.source_paths(src) == ["/gpfs/home/{uid}"]
    assert builders.source_paths({"csi": {"volumeHandle": "x"}}) == []


# -- no root, no system ids ----------------------------------------------------------

ROOTISH = [
    ("uid 1", dict(uid_number=1), "runs as uid 1, below min_uid"),
    ("gid 0", dict(gid_number=0), "runs as gid 0, below min_gid"),
    ("group 0", dict(groups=(Group("wheel", 0),)), "group id 0 is in refused_gids"),
    ("negative group", dict(groups=(Group("odd", -3),)), "group id -3 is negative"),
]


@pytest.mark.parametrize(("change", "sentence"), [r[1:] for r in ROOTISH],
                         ids=[r[0] for r in ROOTISH])  # fmt: skip
async def test_final_check_refuses_system_ids_whoever_the_person_is(
    change: dict[str, Any], sentence: str
) -> None:
    # Even a pod built faithfully for such an identity is refused.
    person = dataclasses.replace(ALICE, **change)
    rootish = plan(identity=person)
    pod = builders.personalize_pod(kubespawner_pod(), rootish)
    problems = builders.pod_violations(pod, rootish)
    assert any(sentence in p for p in problems), problems


async def test_lower_limits_are_the_sites_choice() -> None:
    person = dataclasses.replace(ALICE, uid_number=500, gid_number=500)
    lowered = plan(identity=person, min_uid=100, min_gid=100)
    pod = builders.personalize_pod(kubespawner_pod(), lowered)
    assert builders.pod_violations(pod, lowered) == []


# -- configured containers that ask for privileges ----------------------------------

# Zero to JupyterHub's singleuser.cloudMetadata.blockWithIptables init container.
BLOCKER = {
    "name": "block-cloud-metadata",
    "image": "quay.io/jupyterhub/k8s-network-tools:4.3.0",
    "command": ["iptables", "-A", "OUTPUT", "-d", "169.254.169.254", "-j", "DROP"],
    "securityContext": {"runAsUser": 0, "privileged": True,
                        "capabilities": {"add": ["NET_ADMIN"]}},
}  # fmt: skip


def test_privilege_requests_read_either_spelling() -> None:
    asks = builders.privilege_requests(BLOCKER)
    assert asks == ["runAsUser 0 (root)", "privileged", "capabilities ['NET_ADMIN']"]
    snake = {"name": "x", "security_context": {"run_as_user": 0, "privileged": True,
                                               "capabilities": {"add": ["NET_ADMIN"]}}}  # fmt: skip
    assert builders.privilege_requests(snake) == asks
    assert builders.privilege_requests({"name": "plain", "image": "busybox"}) == []
    assert builders.privilege_requests(_as_person("fine")) == []


async def test_privileged_init_container_is_not_rewritten() -> None:
    raw = kubespawner_pod(
        init_containers=[BLOCKER, {"name": "setup", "image": "busybox"}],
        extra_containers=[{"name": "side", "image": "x",
                           "securityContext": {"allowPrivilegeEscalation": True}}],
    )  # fmt: skip
    pod = builders.personalize_pod(raw, plan())
    blocker, setup = _spec(pod)["initContainers"]
    # Left as configured (it would fail as the person), for the final check to refuse.
    assert blocker["securityContext"] == BLOCKER["securityContext"]
    # An unprivileged one runs as the person.
    assert setup["securityContext"]["runAsUser"] == 20001
    side = next(c for c in _spec(pod)["containers"] if c["name"] == "side")
    assert side["securityContext"] == {"allowPrivilegeEscalation": True}
    problems = builders.pod_violations(pod, plan())
    assert any("init container 'block-cloud-metadata' runs as 0:" in p for p in problems)
    assert any("container 'side' may gain privileges" in p for p in problems)


# -- the home claim holding every home -------------------------------------------------


def shared_plan() -> builders.PodPlan:
    volume, mount = builders.shared_home_volume("gpfs-homes", "a/alice", "/gpfs/home/a/alice")
    return builders.PodPlan(identity=ALICE, home="/gpfs/home/a/alice",
                            volumes=(volume,), mounts=(mount,))  # fmt: skip


@pytest.mark.parametrize(
    ("sub_path", "refused"),
    [("", True), ("a", True), ("a/bob", True), ("a/alice/../bob", True),
     ("a/alice", False), ("a/alice/data", False)],
)  # fmt: skip
async def test_shared_claim_is_mounted_only_within_the_home(sub_path: str, refused: bool) -> None:
    shared = shared_plan()
    pod = builders.personalize_pod(kubespawner_pod(), shared)
    _spec(pod)["volumes"].append(
        {"name": "all", "persistentVolumeClaim": {"claimName": "gpfs-homes"}}
    )
    mount = {"name": "all", "mountPath": "/mnt/x"}
    if sub_path:
        mount["subPath"] = sub_path
    _notebook(pod)["volumeMounts"].append(mount)
    problems = builders.pod_violations(pod, shared)
    assert any("beyond the person's home" in p for p in problems) is refused, problems
