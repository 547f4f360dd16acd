"""Check objects against the official Kubernetes OpenAPI schema, offline.

The schemas come with ``kubernetes-validate`` (the "strict" variant, which also
rejects unknown fields, as ``kubectl``'s default ``fieldValidation=Strict``
does). Unlike ``kubernetes_validate.validate``, which reads the JSON files on
every call, the definitions are read once per process and one compiled
validator is kept per kind, so starting many clusters in a test run is cheap.

What the schema cannot express (names, duplicates, references between fields,
immutable fields: the API server's own validation) is in :mod:`.rules`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from .errors import invalid
from .patch import SchemaNode

__all__ = ["DEFAULT_KUBE_VERSION", "Validator", "kubernetes_path"]

DEFAULT_KUBE_VERSION = "1.32"


def _schema_dir(version: str) -> str:
    want = tuple(int(p) for p in kv_utils.major_minor(version.lstrip("v")).split("."))
    usable = [
        v
        for v in kv_utils.all_versions()
        if tuple(int(p) for p in kv_utils.major_minor(v).split(".")) <= want
    ]
    if not usable:
        raise ValueError(f"kubernetes-validate has no schema for Kubernetes {version}")
    return f"kubernetes-json-schema/v{usable[-1]}-local-strict"


@functools.cache
def _registry(schema_dir: str) -> Registry:
    definitions = kv_utils.schema_contents(f"{schema_dir}/_definitions.json", schema_dir)
    registry: Registry = Resource.from_contents(definitions) @ Registry()
    return registry


@functools.cache
def _validator(schema_dir: str, kind: str, api_version: str) -> Any:
    schema = _kind_schema(schema_dir, kind, api_version)
    return jsonschema.validators.Draft202012Validator(schema, registry=_registry(schema_dir))


@functools.cache
def _kind_schema(schema_dir: str, kind: str, api_version: str) -> Any:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return kv_utils.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", schema_dir)


@functools.cache
def _definitions(schema_dir: str) -> Any:
    return kv_utils.schema_contents(f"{schema_dir}/_definitions.json", schema_dir)["$defs"]


def kubernetes_path(path: Iterable[Any]) -> str:
    """``['spec', 'containers', 0, 'name']`` → ``spec.containers[0].name``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class Validator:
    """Validates objects for one Kubernetes version.

    Parameters
    ----------
    kube_version
        ``"1.32"``-style version; the newest bundled schema not newer than it is used.
    """

    def __init__(self, kube_version: str = DEFAULT_KUBE_VERSION) -> None:
        self.schema_dir = _schema_dir(kube_version)
        _registry(self.schema_dir)  # load the definitions now, not on the first request

    def patch_schema(self, kind: str, api_version: str) -> SchemaNode:
        """The kind's schema as strategic merge patches read it."""
        return SchemaNode(
            _kind_schema(self.schema_dir, kind, api_version), _definitions(self.schema_dir)
        )

    def check(self, obj: dict[str, Any], kind: str, api_version: str, group: str = "") -> None:
        """Raise a 422 ``Invalid`` ApiError if ``obj`` breaks the schema."""
        name = obj.get("metadata", {}).get("name") or ""
        validator = _validator(self.schema_dir, kind, api_version)
        error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
        if error is not None:
            raise invalid(
                kind, name, [(kubernetes_path(error.absolute_path), error.message)], group
            )
