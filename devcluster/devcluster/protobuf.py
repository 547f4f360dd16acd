"""Read request bodies in the Kubernetes protobuf encoding, for the few kinds that need it.

kubectl's typed clients send built-in kinds as ``application/vnd.kubernetes.protobuf``
whatever the server: ``kubectl auth can-i`` posts its SelfSubjectAccessReview
that way, and ``kubectl create token`` its TokenRequest. The encoding is the
magic ``k8s\\x00`` followed by a ``runtime.Unknown`` envelope (``typeMeta``,
``raw``, ...) whose ``raw`` is the object's own protobuf message, without its
kind and apiVersion.

There is no protobuf library or generated type here: this is a wire-format
reader with a table of the messages it understands (:data:`KINDS`, field
numbers from the ``generated.proto`` files of ``k8s.io/api`` and
``k8s.io/apimachinery``). Fields it does not know are skipped, as a protobuf
reader skips unknown fields; the result is the JSON object the rest of the
server handles (and validates). Answers stay JSON, which those clients accept
(``Accept: application/vnd.kubernetes.protobuf,application/json``). Other kinds
sent as protobuf get 415 Unsupported Media Type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import ApiError, bad_request
from .store import Obj

__all__ = ["KINDS", "MEDIA_TYPE", "decode"]

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# message -> field number -> (JSON name, type). A type is "string", "bool", "int",
# "bytes" or a message name; "[T]" is a repeated T and "{T}" a map<string, T>.
_MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    # Server-set and rarely sent fields (timestamps, owners, ...) are left out: skipped.
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        11: ("labels", "{string}"),
        12: ("annotations", "{string}"),
    },
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectAccessReviewSpec"),
        3: ("status", "SubjectAccessReviewStatus"),
    },
    "SubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SubjectAccessReviewSpec"),
        3: ("status", "SubjectAccessReviewStatus"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
        3: ("user", "string"),
        4: ("groups", "[string]"),
        5: ("extra", "{ExtraValue}"),
        6: ("uid", "string"),
    },
    # Field and label selectors (8, 9) are skipped: RBAC does not read them.
    "ResourceAttributes": {
        1: ("namespace", "string"),
        2: ("verb", "string"),
        3: ("group", "string"),
        4: ("version", "string"),
        5: ("resource", "string"),
        6: ("subresource", "string"),
        7: ("name", "string"),
    },
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SubjectAccessReviewStatus": {
        1: ("allowed", "bool"),
        2: ("reason", "string"),
        3: ("evaluationError", "string"),
        4: ("denied", "bool"),
    },
    "ExtraValue": {1: ("items", "[string]")},
    # kubectl create token (the status, field 3, is the server's: skipped).
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {
        1: ("audiences", "[string]"),
        3: ("boundObjectRef", "BoundObjectReference"),
        4: ("expirationSeconds", "int"),
    },
    "BoundObjectReference": {
        1: ("kind", "string"),
        2: ("apiVersion", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
    },
}
_SCALARS = ("string", "bool", "int", "bytes")
# Messages whose JSON form is the value of their one field (a list, for ExtraValue).
_UNWRAPPED = {"ExtraValue": "items"}

KINDS: dict[tuple[str, str], str] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SubjectAccessReview"): "SubjectAccessReview",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
}
"""``(apiVersion, kind)`` that can be read from protobuf, and their message."""


def _malformed(why: str) -> ApiError:
    return bad_request(f"the body of the request could not be decoded: protobuf: {why}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 64:
        if pos >= len(data):
            raise _malformed("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise _malformed("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """``(field number, value)`` pairs: an int for numeric fields, bytes for the others."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _malformed("truncated field")
            value, pos = data[pos : pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise _malformed("truncated field")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        else:
            raise _malformed(f"unsupported wire type {wire}")
        yield number, value


def _value(kind: str, raw: int | bytes) -> Any:
    if kind in ("bool", "int"):
        if not isinstance(raw, int):
            raise _malformed(f"expected a number, got {len(raw)} bytes")
        if kind == "bool":
            return bool(raw)
        return raw - (1 << 64) if raw >= 1 << 63 else raw  # int64 is two's complement
    if not isinstance(raw, bytes):
        raise _malformed(f"expected a {kind}, got the number {raw}")
    if kind == "bytes":
        return raw
    if kind == "string":
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise _malformed(f"invalid UTF-8 in a string: {exc}") from exc
    return _message(kind, raw)


def _map_entry(kind: str, raw: int | bytes) -> tuple[str, Any]:
    if not isinstance(raw, bytes):
        raise _malformed("expected a map entry")
    key, value = "", _value(kind, b"")  # an absent value is the empty one (maps hold no numbers)
    for number, field in _fields(raw):
        if number == 1:
            key = _value("string", field)
        elif number == 2:
            value = _value(kind, field)
    return key, value


def _message(name: str, data: bytes) -> Any:
    schema = _MESSAGES[name]
    obj: dict[str, Any] = {}
    for number, raw in _fields(data):
        field = schema.get(number)
        if field is None:
            continue  # a field this reader does not know: skipped, as protobuf readers do
        key, kind = field
        if kind.startswith("["):
            obj.setdefault(key, []).append(_value(kind[1:-1], raw))
        elif kind.startswith("{"):
            entry_key, entry_value = _map_entry(kind[1:-1], raw)
            obj.setdefault(key, {})[entry_key] = entry_value
        else:
            value = _value(kind, raw)
            # Go writes unset scalars as zero values where its JSON omits them
            # (omitempty): drop them, or an empty metadata.name would be "invalid".
            if value or kind not in _SCALARS:
                obj[key] = value
    unwrapped = _UNWRAPPED.get(name)
    return obj.get(unwrapped, []) if unwrapped else obj


def decode(data: bytes) -> Obj:
    """The JSON object for a protobuf-encoded request body.

    Raises
    ------
    ApiError
        400 for a malformed body, 415 for a kind not in :data:`KINDS`.
    """
    if not data.startswith(_MAGIC):
        raise _malformed("the body does not start with the k8s protobuf prefix")
    envelope = _message("Unknown", data[len(_MAGIC) :])
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    message = KINDS.get((api_version, kind))
    if message is None:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the devcluster cannot read a {kind or 'body'} ({api_version}) sent as "
            f"{MEDIA_TYPE}: send it as application/json",
        )
    obj: Obj = {"kind": kind, "apiVersion": api_version}
    obj.update(_message(message, envelope.get("raw", b"")))
    return obj
