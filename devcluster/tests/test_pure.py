"""Pure parts of the dev cluster: selectors, patches, validation messages."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.errors import ApiError
from devcluster.patch import (
    JSON_PATCH,
    MERGE,
    STRATEGIC,
    apply_patch,
)
from devcluster.selectors import parse_field_selector, parse_label_selector
from devcluster.validation import Validator, kubernetes_path

pytestmark = pytest.mark.line_independent

LABELS = {"app": "hub", "tier": "front", "zone": "a"}
OBJ = {"metadata": {"name": "x", "labels": LABELS}, "spec": {"nodeName": "node-1"}}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("app=hub", True),
        ("app==hub", True),
        ("app!=hub", False),
        ("app=db", False),
        ("missing!=x", True),
        ("tier in (front,back)", True),
        ("tier in ( back )", False),
        ("tier notin (back)", True),
        ("missing notin (a)", True),
        ("zone", True),
        ("!zone", False),
        ("!missing", True),
        ("app=hub,tier in (front),!missing", True),
        ("app=hub,tier in (back)", False),
        ("", True),
    ],
)
def test_label_selector_table(selector: str, matches: bool) -> None:
    matcher = parse_label_selector(selector)
    assert (matcher is None or matcher(OBJ)) is matches


@pytest.mark.parametrize("bad", ["app in (a", "=x", "a b c"])
def test_unparseable_label_selectors_are_400(bad: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_label_selector(bad)
    assert info.value.code == 400


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("metadata.name=x", True),
        ("metadata.name!=x", False),
        ("spec.nodeName=node-1,metadata.name=x", True),
        ("spec.nodeName=node-2", False),
        ("status.phase=", True),  # absent fields compare as ""
    ],
)
def test_field_selector_table(selector: str, matches: bool) -> None:
    matcher = parse_field_selector(selector)
    assert matcher is not None and matcher(OBJ) is matches


POD: dict[str, Any] = {
    "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {"name": "one", "image": "i:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "two", "image": "j:1"},
        ],
        "tolerations": [{"key": "k", "operator": "Exists"}],
    },
}


@pytest.mark.parametrize(
    ("content_type", "patch", "check"),
    [
        (MERGE, {"metadata": {"labels": {"a": None}}}, lambda o: o["metadata"]["labels"] == {}),
        (
            MERGE,
            {"spec": {"containers": [{"name": "only"}]}},
            lambda o: [c["name"] for c in o["spec"]["containers"]] == ["only"],
        ),
        (
            STRATEGIC,
            {"spec": {"containers": [{"name": "two", "image": "j:2"}]}},
            lambda o: [c["image"] for c in o["spec"]["containers"]] == ["i:1", "j:2"],
        ),
        (
            STRATEGIC,
            {"spec": {"containers": [{"name": "one", "$patch": "delete"}]}},
            lambda o: [c["name"] for c in o["spec"]["containers"]] == ["two"],
        ),
        (
            STRATEGIC,
            {"spec": {"tolerations": [{"key": "other", "operator": "Exists"}]}},
            lambda o: o["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"}],
        ),
        (
            STRATEGIC,
            {"metadata": {"finalizers": ["y"]}},
            lambda o: o["metadata"]["finalizers"] == ["x", "y"],
        ),
        (
            STRATEGIC,
            {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}},
            lambda o: o["metadata"]["finalizers"] == [],
        ),
        (
            JSON_PATCH,
            [{"op": "replace", "path": "/spec/containers/1/image", "value": "j:3"}],
            lambda o: o["spec"]["containers"][1]["image"] == "j:3",
        ),
    ],
)
def test_patch_kinds(content_type: str, patch: Any, check: Any) -> None:
    result = apply_patch(content_type, POD, patch)
    assert check(result)
    assert POD["spec"]["containers"][1]["image"] == "j:1"  # the input is never changed


def test_failing_json_patch_is_422_and_unknown_patch_type_415() -> None:
    with pytest.raises(ApiError) as info:
        apply_patch(JSON_PATCH, POD, [{"op": "test", "path": "/metadata/name", "value": "q"}])
    assert info.value.code == 422
    with pytest.raises(ApiError) as info:
        apply_patch("application/apply-patch+yaml", POD, {})
    assert info.value.code == 415


def test_kubernetes_path_format() -> None:
    assert kubernetes_path(["spec", "containers", 0, "name"]) == "spec.containers[0].name"


def test_validator_accepts_valid_and_names_the_bad_field() -> None:
    validator = Validator("1.32")
    validator.check(dict(POD, apiVersion="v1", kind="Pod"), "Pod", "v1")
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": 5}]},
    }
    with pytest.raises(ApiError) as info:
        validator.check(bad, "Pod", "v1")
    assert info.value.code == 422
    assert info.value.message.startswith(
        'Pod "p" is invalid: spec.containers[0].image: 5 is not of type'
    )


def test_strategic_merge_follows_the_schema_merge_keys() -> None:
    schema = Validator("1.32").patch_schema("Service", "v1")
    service = {
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]},
    }
    patched = apply_patch(
        STRATEGIC, service, {"spec": {"ports": [{"port": 443, "name": "tls"}]}}, schema
    )
    assert patched["spec"]["ports"] == [{"port": 80, "name": "http"}, {"port": 443, "name": "tls"}]


def test_strategic_merge_replaces_atomic_lists_per_schema() -> None:
    schema = Validator("1.32").patch_schema("Pod", "v1")
    patched = apply_patch(
        STRATEGIC, POD, {"spec": {"containers": [{"name": "one", "args": ["b"]}]}}, schema
    )
    assert [c["name"] for c in patched["spec"]["containers"]] == ["one", "two"]
    assert patched["spec"]["containers"][0]["args"] == ["b"]
    assert patched["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    merged = apply_patch(STRATEGIC, POD, {"metadata": {"finalizers": ["y"]}}, schema)
    assert merged["metadata"]["finalizers"] == ["x", "y"]
