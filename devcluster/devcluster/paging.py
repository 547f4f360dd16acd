"""List paging (``limit`` and ``continue``) as the API server does it over etcd.

A list with ``limit=N`` answers at most N objects in storage-key order
(``NAMESPACE/NAME``). When more follow, ``metadata.continue`` holds a token and,
for lists without label or field selectors, ``metadata.remainingItemCount``
says how many. The token is the API server's: unpadded URL-safe base64 of
``{"v": "meta.k8s.io/v1", "rv": RV, "start": KEY}``, where RV is the
resourceVersion of the first page and KEY the key after which the next page
starts (relative to the listed namespace), so clients can treat it as opaque.

Every page of one list shows the objects as they were at RV, a consistent
snapshot, as etcd's multi-version store gives it: the store undoes the events
since RV over the current objects (:meth:`.Store.state_at`). When those events
have left the store's history window, the continue request gets 410 Expired
with a token (``rv`` -1) that lists the rest at the latest state, as a real
server answers once etcd has compacted the revision. A malformed token is 400.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import heapq
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import bad_request, expired_continue
from .resources import ResourceType
from .store import Entry, Store

__all__ = ["Page", "decode_continue", "encode_continue", "list_page"]

Obj = dict[str, Any]
_CONTINUE_FORMAT = "meta.k8s.io/v1"  # the apiVersion field of the token
_LATEST = -1  # a token's rv meaning "go on at the latest state" (after 410 Expired)


def encode_continue(rv: int, start: str) -> str:
    """A continue token: list on from key ``start`` (inclusive) at resourceVersion ``rv``."""
    raw = json.dumps({"v": _CONTINUE_FORMAT, "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[int, str]:
    """The ``(rv, start)`` of a continue token.

    Raises
    ------
    ApiError
        400 BadRequest for a token this server did not make.
    """
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"invalid continue token: {exc}") from exc
    if not isinstance(data, dict) or data.get("v") != _CONTINUE_FORMAT:
        raise bad_request("invalid continue token: unrecognized version")
    rv, start = data.get("rv"), data.get("start")
    if not isinstance(rv, int) or isinstance(rv, bool) or rv == 0 or rv < _LATEST:
        raise bad_request("invalid continue token: continue key is not valid: incorrect rv")
    if not isinstance(start, str) or not start:
        raise bad_request("invalid continue token: continue key is not valid: empty start key")
    return rv, start


@dataclass
class Page:
    """One page of a list: its entries and its ListMeta fields."""

    entries: list[Entry]
    rv: int
    continue_token: str | None = None
    remaining: int | None = None

    def list_meta(self) -> dict[str, Any]:
        """``metadata`` of the list answer."""
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if self.continue_token:
            meta["continue"] = self.continue_token
        if self.remaining is not None:
            meta["remainingItemCount"] = self.remaining
        return meta


def _merged(first: list[str], lo: int, hi: int, second: list[str]) -> Iterator[str]:
    """Keys of ``first[lo:hi]`` and ``second`` (both sorted) in order, each once."""
    last = None
    for key in heapq.merge((first[i] for i in range(lo, hi)), second):
        if key != last:
            yield key
            last = key


def list_page(
    store: Store,
    resource: ResourceType,
    namespace: str | None,
    limit: int,
    token: str | None,
    match: Callable[[Obj], bool] | None = None,
    candidates: list[str] | None = None,
) -> Page:
    """One page of a list (``limit`` <= 0: everything from the token on).

    Parameters
    ----------
    namespace
        The listed namespace (None: all namespaces, or a cluster-scoped kind).
    token
        The ``continue`` parameter, or None for the first page.
    match
        Label and field selectors together (None: everything matches).
    candidates
        Sorted storage keys to look at instead of every key of the type (an
        index narrowing the selectors, e.g. the pods of one node); the snapshot
        adds the keys changed since.

    Raises
    ------
    ApiError
        400 for a bad token, 410 Expired when the token's snapshot is gone.
    """
    prefix = f"{namespace}/" if namespace else ""
    snapshot_rv, start = store.rv, prefix
    before: dict[str, Entry | None] = {}
    if token:
        token_rv, relative = decode_continue(token)
        start = prefix + relative
        if token_rv != _LATEST:
            state = store.state_at(resource, token_rv)
            if state is None:
                raise expired_continue(encode_continue(_LATEST, relative))
            snapshot_rv, before = token_rv, state
    # "/" + 1 is "0": every key with the prefix sorts below prefix[:-1] + "0".
    end = prefix[:-1] + "0" if prefix else None
    keys = candidates if candidates is not None else store.sorted_keys(resource)
    lo = bisect.bisect_left(keys, start)
    hi = bisect.bisect_left(keys, end) if end is not None else len(keys)
    changed = sorted(k for k in before if k >= start and (end is None or k < end))

    def at_snapshot(key: str) -> Entry | None:
        return before[key] if key in before else store.get_by_key(resource, key)

    entries: list[Entry] = []
    last = ""
    more = False
    for key in _merged(keys, lo, hi, changed):
        entry = at_snapshot(key)
        if entry is None:
            continue
        if 0 < limit <= len(entries):
            more = True
            break
        if match is None or match(entry.obj):
            entries.append(entry)
            last = key
    page = Page(entries, snapshot_rv)
    if more:
        page.continue_token = encode_continue(snapshot_rv, last[len(prefix) :] + "\x00")
        if match is None and candidates is None:
            page.remaining = _count_after(store, resource, keys, last, hi, before, end)
    return page


def _count_after(
    store: Store,
    resource: ResourceType,
    keys: list[str],
    last: str,
    hi: int,
    before: dict[str, Entry | None],
    end: str | None,
) -> int:
    """How many keys after ``last`` (below ``end``) the snapshot holds."""
    count = hi - bisect.bisect_right(keys, last)
    for key, then in before.items():
        if key > last and (end is None or key < end):
            now = store.get_by_key(resource, key) is not None
            count += (then is not None) - now
    return count
