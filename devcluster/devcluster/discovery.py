"""Discovery documents: ``/version``, ``/api``, ``/apis`` and the resource lists.

Only the legacy (non-aggregated) discovery format is served; clients that ask
for aggregated discovery (``as=APIGroupDiscoveryList``) fall back to it, as
they do with older API servers. Kinds that are not stored (the access reviews
of ``authorization.k8s.io/v1``) are listed with the one verb ``create``.
"""

from __future__ import annotations

from typing import Any

from .resources import RESOURCES, group_versions

__all__ = [
    "api_group",
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "openapi_v3_group_version",
    "openapi_v3_root",
    "version_info",
]

_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "log": ["get"], "binding": ["create"]}


def version_info(kube_version: str) -> dict[str, Any]:
    """The ``/version`` document for ``1.32``-style versions."""
    major, minor = kube_version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{major}.{minor}.0-devcluster",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(address: str) -> dict[str, Any]:
    """The ``/api`` document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list() -> dict[str, Any]:
    """The ``/apis`` document."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name, versions) for name, versions in group_versions().items()],
    }


def api_group(name: str) -> dict[str, Any] | None:
    """The ``/apis/GROUP`` document, or None for an unknown group."""
    versions = group_versions().get(name)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """The ``/api/v1`` or ``/apis/GROUP/VERSION`` document, or None if not served."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    items: list[dict[str, Any]] = []
    for r in served:
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.kind in ("Pod", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim"):
            entry["categories"] = ["all"]
        items.append(entry)
        for sub in r.subresources:
            items.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": "Binding" if sub == "binding" else r.kind,
                    "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"]),
                }
            )
        if r.kind == "ServiceAccount":
            items.append(
                {
                    "name": "serviceaccounts/token",
                    "singularName": "",
                    "namespaced": True,
                    "group": "authentication.k8s.io",
                    "version": "v1",
                    "kind": "TokenRequest",
                    "verbs": ["create"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": items,
    }


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root() -> dict[str, Any]:
    """The ``/openapi/v3`` index: one document per group-version."""
    gvs = {(r.group, r.version) for r in RESOURCES}
    return {
        "paths": {
            _gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}?hash=devcluster"}
            for g, v in sorted(gvs)
        }
    }


def openapi_v3_group_version(group: str, version: str) -> dict[str, Any] | None:
    """A minimal OpenAPI v3 document for one group-version: its operations only.

    Clients read it to learn which query parameters the write operations take
    (``kubectl`` checks that PATCH accepts ``fieldValidation`` before leaving
    validation to the server). Schemas are not included: kubectl then falls back
    to its built-in types for strategic merge patches.
    """
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    params = [
        {"name": p, "in": "query", "schema": {"type": "string"}}
        for p in ("dryRun", "fieldManager", "fieldValidation")
    ]
    paths: dict[str, Any] = {}
    for r in served:
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        base = "/" + _gv_path(group, version)
        base += f"/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"/{r.plural}"

        def op(action: str, gvk: dict[str, str] = gvk) -> dict[str, Any]:
            return {
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            }

        if not r.stored:
            paths[base] = {"post": op("post")}  # a review is only ever created
            continue
        paths[base] = {"post": op("post"), "get": op("list")}
        paths[base + "/{name}"] = {
            "get": op("get"),
            "put": op("put"),
            "patch": op("patch"),
            "delete": op("delete"),
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (devcluster)", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": {}},
    }
