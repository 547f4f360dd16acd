"""A checker for the Kubernetes Pod Security Standard "restricted" (v1.25+ rules).

Written from https://kubernetes.io/docs/concepts/security/pod-security-standards/
so tests can assert that a built pod would be admitted by a namespace labeled
``pod-security.kubernetes.io/enforce: restricted``. Returns the violations; an
empty list means the pod passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """Every way ``pod`` breaks the "restricted" profile (baseline included)."""
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    containers = [
        (kind, c)
        for kind in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(kind) or []
    ]
    out: list[str] = []
    # baseline
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            out.append(f"spec.{flag} is true")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if kinds - _RESTRICTED_VOLUMES:
            out.append(f"volume {volume.get('name')} uses {sorted(kinds)}")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            out.append(f"unsafe sysctl {sysctl.get('name')}")
    if (psc.get("seLinuxOptions") or {}).get("type") not in (
        None, "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t",
    ):  # fmt: skip
        out.append("pod seLinuxOptions.type not allowed")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        out.append(f"pod seccompProfile {pod_seccomp}")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser is 0")
    for kind, c in containers:
        where = f"{kind}[{c.get('name')}]"
        csc = c.get("securityContext") or {}
        if csc.get("privileged"):
            out.append(f"{where} is privileged")
        caps = csc.get("capabilities") or {}
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{where} adds capabilities {caps.get('add')}")
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{where} does not drop ALL capabilities")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{where} uses hostPort {port['hostPort']}")
        if csc.get("procMount") not in (None, "Default"):
            out.append(f"{where} procMount {csc.get('procMount')}")
        if csc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where} does not set allowPrivilegeEscalation: false")
        non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root is not True:
            out.append(f"{where} does not run as non-root")
        if csc.get("runAsUser") == 0:
            out.append(f"{where} runAsUser is 0")
        seccomp = (csc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{where} has seccompProfile {seccomp}")
    return out
