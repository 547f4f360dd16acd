"""The three PATCH kinds the API server takes: JSON merge, strategic merge, JSON patch.

Server-side apply (``application/apply-patch+yaml``) is not modelled: such a
PATCH is refused plainly with 415, before the object is looked up (so never a
404 for an object apply would have created); see :func:`check_patch_type`.

Strategic merge follows each field's patch strategy as the Kubernetes OpenAPI
schema declares it (``x-kubernetes-patch-strategy: merge`` and
``x-kubernetes-patch-merge-key``): lists of named things (containers by
``name``, service ports by ``port``, volume mounts by ``mountPath``, ...) merge
element by element, lists of scalars with a merge strategy (``finalizers``)
merge as sets, and every other list is replaced. The ``$patch: replace|delete``
and ``$deleteFromPrimitiveList/<field>`` directives work; ``$setElementOrder``
and ``$retainKeys`` are accepted and ignored. Without a schema (kinds the
official spec does not describe) a table of the common merge keys is used.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch  # type: ignore[import-untyped,unused-ignore]

from .errors import ApiError, bad_request

__all__ = ["APPLY", "JSON_PATCH", "MERGE", "STRATEGIC", "apply_patch", "check_patch_type"]

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"

# field name -> merge key, for lists Kubernetes merges element by element.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "conditions": "type",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "taints": "key",
    "addresses": "type",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
}
# lists of scalars merged as sets
_SET_LISTS = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class SchemaNode:
    """A view on the part of a Kubernetes JSON schema that describes one value.

    Parameters
    ----------
    node
        The schema node (may hold a ``$ref`` next to the patch extensions), or None.
    definitions
        The ``$defs`` the references point into.
    """

    def __init__(self, node: dict[str, Any] | None, definitions: dict[str, Any]) -> None:
        self.node = node or {}
        self.definitions = definitions

    def resolved(self) -> dict[str, Any]:
        """The schema node with its ``$ref`` chain followed."""
        node = self.node
        for _ in range(20):  # reference chains are short; never loop forever
            ref = node.get("$ref")
            if not isinstance(ref, str):
                break
            node = self.definitions.get(ref.rsplit("/", 1)[-1], {})
        return node

    def field(self, name: str) -> SchemaNode:
        """The schema of property ``name``."""
        return SchemaNode(self.resolved().get("properties", {}).get(name), self.definitions)

    def items(self) -> SchemaNode:
        """The schema of a list's elements."""
        return SchemaNode(self.resolved().get("items"), self.definitions)

    @property
    def merges(self) -> bool:
        """Whether the list's patch strategy is ``merge``."""
        return "merge" in str(self.node.get("x-kubernetes-patch-strategy", "")).split(",")

    @property
    def merge_key(self) -> str | None:
        """The merge key of a list of objects."""
        key = self.node.get("x-kubernetes-patch-merge-key")
        return str(key) if key else None


def _list_strategy(field: str, schema: SchemaNode | None) -> tuple[bool, str | None]:
    """(merge?, merge key) for list ``field``: from the schema, else from the table."""
    if schema is not None:
        child = schema.field(field)
        if child.node:
            return child.merges, child.merge_key
    if field in _SET_LISTS:
        return True, None
    key = _MERGE_KEYS.get(field)
    return key is not None, key


def _strategic_list(
    field: str, target: list[Any], patch: list[Any], schema: SchemaNode | None
) -> list[Any]:
    merges, key = _list_strategy(field, schema)
    item_schema = schema.field(field).items() if schema is not None else None
    if not merges:
        return copy.deepcopy(patch)
    if key is None:
        return target + [v for v in patch if v not in target]
    if key is None or not all(isinstance(p, dict) for p in patch):
        return copy.deepcopy(patch)
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if p.get("$patch") != "replace"]
    result = [dict(t) if isinstance(t, dict) else t for t in target]
    for item in patch:
        index = next(
            (
                i
                for i, t in enumerate(result)
                if isinstance(t, dict) and key in item and t.get(key) == item.get(key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(strategic_merge({}, item, item_schema))
        else:
            result[index] = strategic_merge(result[index], item, item_schema)
    return result


def strategic_merge(target: Any, patch: Any, schema: SchemaNode | None = None) -> Any:
    """Apply a strategic merge patch (see the module docstring for what is supported).

    Parameters
    ----------
    schema
        The schema of ``target`` (patch strategies come from it), or None for the
        built-in table of merge keys.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if name.startswith("$deleteFromPrimitiveList/"):
            field = name.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
        elif name.startswith("$setElementOrder/") or name in ("$patch", "$retainKeys"):
            continue
        elif value is None:
            result.pop(name, None)
        elif isinstance(value, list) and isinstance(result.get(name), list):
            result[name] = _strategic_list(name, result[name], value, schema)
        elif isinstance(value, dict):
            merged = strategic_merge(
                result.get(name), value, schema.field(name) if schema is not None else None
            )
            if merged is None:
                result.pop(name, None)
            else:
                result[name] = merged
        else:
            result[name] = copy.deepcopy(value)
    return result


def check_patch_type(content_type: str) -> str:
    """The patch type of a ``Content-Type``; 415 for one not served (server-side apply).

    Raises
    ------
    ApiError
        415 ``UnsupportedMediaType``.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == APPLY:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"server-side apply ({APPLY}) is not supported by this API server (devcluster); "
            f"accepted media types include: {JSON_PATCH}, {MERGE}, {STRATEGIC}",
        )
    if kind not in (JSON_PATCH, MERGE, STRATEGIC):
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {JSON_PATCH}, {MERGE}, {STRATEGIC}",
        )
    return kind


def apply_patch(
    content_type: str, target: dict[str, Any], body: Any, schema: SchemaNode | None = None
) -> dict[str, Any]:
    """Apply a PATCH body of ``content_type`` to ``target`` and return the new object.

    ``schema`` (the object kind's schema) drives strategic merge; see the module docstring.

    Raises
    ------
    ApiError
        415 for a patch type we do not serve (server-side apply), 422/400 for a
        patch that does not apply.
    """
    kind = check_patch_type(content_type)
    if kind == JSON_PATCH:
        if not isinstance(body, list):
            raise bad_request("json patch must be a list of operations")
        try:
            result = jsonpatch.apply_patch(target, body)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ApiError(422, "Invalid", f"the server rejected our request: {exc}") from exc
    elif kind == MERGE:
        result = merge_patch(target, body)
    else:
        result = strategic_merge(target, body, schema)
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce an object")
    return result
