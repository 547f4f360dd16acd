"""Stored objects, the global resourceVersion counter and watch fan-out.

Objects are plain JSON dicts and are never changed in place once stored: a write
stores a new dict, so watch events and list answers can share them safely. Each
stored object keeps its JSON encoding once made, so large lists and many
watchers do not re-encode the same object.

Each resource type keeps a bounded window of its recent events; a watch that
asks to resume from a resourceVersion older than the window gets 410 Gone, as
from a real API server whose watch cache has moved on. The same window lets a
paged list (:mod:`.paging`) see the objects as they were at the resourceVersion
of its first page: the events since then are undone over the current objects.

Objects are ordered by their storage key (``NAMESPACE/NAME``, or ``NAME`` for
cluster-scoped kinds) as etcd orders them; that sorted index of a type is built
the first time a paged list asks for it and kept up to date from then on, so a
cluster that is never listed page by page pays nothing for it.
"""

from __future__ import annotations

import asyncio
import bisect
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from .errors import gone
from .resources import ResourceType
from .selectors import Matcher

__all__ = ["Entry", "Store", "WatchEvent", "Watcher", "clone", "storage_key"]

Obj = dict[str, Any]


def clone(obj: Obj) -> Obj:
    """A deep copy of a JSON object (faster than :func:`copy.deepcopy` for JSON)."""
    result: Obj = json.loads(json.dumps(obj))
    return result


def storage_key(namespace: str, name: str) -> str:
    """An object's key in the store's order: ``NAMESPACE/NAME``, or ``NAME`` (cluster-scoped)."""
    return f"{namespace}/{name}" if namespace else name


class Entry:
    """A stored object and its JSON encoding, made on first use."""

    __slots__ = ("_raw", "obj")

    def __init__(self, obj: Obj) -> None:
        self.obj = obj
        self._raw: bytes | None = None

    @property
    def raw(self) -> bytes:
        """The object as compact JSON bytes."""
        if self._raw is None:
            self._raw = json.dumps(self.obj, separators=(",", ":")).encode()
        return self._raw


@dataclass
class WatchEvent:
    """One change: ``ADDED``, ``MODIFIED`` or ``DELETED`` of ``entry`` at ``rv``."""

    rv: int
    type: str
    resource: ResourceType
    entry: Entry
    old: Obj | None = None

    @property
    def obj(self) -> Obj:
        """The object after the change (before it, for ``DELETED``)."""
        return self.entry.obj

    def line(self, type_: str | None = None) -> bytes:
        """The watch stream line for this event."""
        return b'{"type":"%s","object":%s}\n' % ((type_ or self.type).encode(), self.entry.raw)


@dataclass(eq=False)
class Watcher:
    """A client's watch: which objects it wants and the queue it reads events from."""

    resource: ResourceType
    namespace: str | None
    label: Matcher | None = None
    fields: Matcher | None = None
    queue: asyncio.Queue[bytes | None] = dc_field(default_factory=asyncio.Queue)

    def matches(self, obj: Obj) -> bool:
        """Whether ``obj`` is in this watch's view."""
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        if self.label is not None and not self.label(obj):
            return False
        return self.fields is None or self.fields(obj)

    def translate(self, event: WatchEvent) -> bytes | None:
        """The line to send for ``event``, or None if the watcher does not see it.

        An object that stops matching the selectors is reported DELETED, one that
        starts matching ADDED, as the API server's watch cache does.
        """
        now = self.matches(event.obj)
        if event.type != "MODIFIED" or event.old is None:
            return event.line() if now else None
        before = self.matches(event.old)
        if now and before:
            return event.line()
        if now:
            return event.line("ADDED")
        if before:
            return event.line("DELETED")
        return None


class Store:
    """All objects of the cluster, per resource type and namespace.

    Parameters
    ----------
    history
        How many recent events to keep per resource type for watch resumption.
    """

    def __init__(self, history: int = 10_000) -> None:
        self.rv = 0
        self.history_size = history
        self._objects: dict[str, dict[str, dict[str, Entry]]] = {}
        self._history: dict[str, deque[WatchEvent]] = {}
        self._compacted: dict[str, int] = {}
        self._watchers: dict[str, set[Watcher]] = {}
        self._pods_by_node: dict[str, dict[tuple[str, str], Entry]] = {}
        self._sorted: dict[str, list[str]] = {}
        self.listeners: list[Callable[[WatchEvent], None]] = []

    # -- reads ---------------------------------------------------------------
    def get_entry(self, resource: ResourceType, namespace: str, name: str) -> Entry | None:
        """The entry of one object, or None."""
        return self._objects.get(resource.key, {}).get(namespace, {}).get(name)

    def get(self, resource: ResourceType, namespace: str, name: str) -> Obj | None:
        """One object, or None."""
        entry = self.get_entry(resource, namespace, name)
        return entry.obj if entry is not None else None

    def entries(self, resource: ResourceType, namespace: str | None = None) -> Iterator[Entry]:
        """Every entry of a type, or of a type in one namespace."""
        spaces = self._objects.get(resource.key, {})
        if namespace is not None:
            yield from spaces.get(namespace, {}).values()
            return
        for objs in spaces.values():
            yield from objs.values()

    def objects(self, resource: ResourceType, namespace: str | None = None) -> Iterator[Obj]:
        """Every object of a type (in one namespace)."""
        for entry in self.entries(resource, namespace):
            yield entry.obj

    def pods_on_node(self, node: str) -> Iterator[Entry]:
        """Entries of the pods bound to ``node`` (an index, not a scan)."""
        yield from list(self._pods_by_node.get(node, {}).values())

    def get_by_key(self, resource: ResourceType, key: str) -> Entry | None:
        """The entry stored under a :func:`storage_key`, or None."""
        namespace, _, name = key.rpartition("/")
        return self.get_entry(resource, namespace, name)

    def sorted_keys(self, resource: ResourceType) -> list[str]:
        """The storage keys of a type in key order (the caller must not change the list)."""
        keys = self._sorted.get(resource.key)
        if keys is None:
            keys = self._sorted[resource.key] = sorted(
                storage_key(ns, name)
                for ns, objs in self._objects.get(resource.key, {}).items()
                for name in objs
            )
        return keys

    def state_at(self, resource: ResourceType, rv: int) -> dict[str, Entry | None] | None:
        """The objects of a type changed after ``rv``, as they were at ``rv``.

        Returns
        -------
        dict or None
            Storage key to the entry at ``rv`` (None: the object did not exist
            then); None when events after ``rv`` have left the history window.
        """
        if rv < self._compacted.get(resource.key, 0):
            return None
        before: dict[str, Entry | None] = {}
        # Newest first: the last value written for a key is its oldest change's "before".
        for event in reversed(self._history.get(resource.key, ())):
            if event.rv <= rv:
                break
            meta = event.obj["metadata"]
            key = storage_key(meta.get("namespace", ""), meta["name"])
            before[key] = Entry(event.old) if event.old is not None else None
        return before

    def namespaces_in_use(self, resource: ResourceType) -> list[str]:
        """Namespaces holding at least one object of a type."""
        return [ns for ns, objs in self._objects.get(resource.key, {}).items() if objs]

    # -- writes --------------------------------------------------------------
    def _index_pod(self, key: tuple[str, str], old: Obj | None, entry: Entry | None) -> None:
        old_node = (old or {}).get("spec", {}).get("nodeName")
        new_node = entry.obj.get("spec", {}).get("nodeName") if entry else None
        if old_node and old_node != new_node:
            self._pods_by_node.get(old_node, {}).pop(key, None)
        if new_node and entry is not None:
            self._pods_by_node.setdefault(new_node, {})[key] = entry

    def put(self, resource: ResourceType, obj: Obj) -> Obj:
        """Store ``obj`` (new or replacing), give it the next resourceVersion, notify.

        The caller hands over ``obj``: it must not change it afterwards.
        """
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        space = self._objects.setdefault(resource.key, {}).setdefault(namespace, {})
        previous = space.get(name)
        entry = Entry(obj)
        space[name] = entry
        if resource.key == "/pods":
            self._index_pod((namespace, name), previous.obj if previous else None, entry)
        if previous is None and resource.key in self._sorted:
            bisect.insort(self._sorted[resource.key], storage_key(namespace, name))
        old = previous.obj if previous else None
        self._emit(WatchEvent(self.rv, "MODIFIED" if previous else "ADDED", resource, entry, old))
        return obj

    def remove(self, resource: ResourceType, namespace: str, name: str) -> Obj | None:
        """Remove an object; the DELETED event carries a new resourceVersion."""
        space = self._objects.get(resource.key, {}).get(namespace, {})
        previous = space.pop(name, None)
        if previous is None:
            return None
        if resource.key == "/pods":
            self._index_pod((namespace, name), previous.obj, None)
        keys = self._sorted.get(resource.key)
        if keys is not None:
            del keys[bisect.bisect_left(keys, storage_key(namespace, name))]
        self.rv += 1
        final = dict(previous.obj)
        final["metadata"] = dict(final["metadata"], resourceVersion=str(self.rv))
        self._emit(WatchEvent(self.rv, "DELETED", resource, Entry(final), previous.obj))
        return final

    def _emit(self, event: WatchEvent) -> None:
        key = event.resource.key
        history = self._history.get(key)
        if history is None:
            history = self._history[key] = deque()
        if len(history) >= self.history_size:
            self._compacted[key] = history.popleft().rv
        history.append(event)
        for watcher in self._watchers.get(key, ()):
            line = watcher.translate(event)
            if line is not None:
                watcher.queue.put_nowait(line)
        for listener in self.listeners:
            listener(event)

    # -- watches -------------------------------------------------------------
    def watch(self, watcher: Watcher, since: int | None) -> list[bytes]:
        """Register ``watcher``; return the lines it must send first.

        Parameters
        ----------
        since
            Resume after this resourceVersion; None (or 0) starts with a synthetic
            ADDED for every current object, as the API server does.

        Raises
        ------
        ApiError
            410 Gone when ``since`` is older than the kept history.
        """
        key = watcher.resource.key
        first: list[bytes] = []
        if not since:
            for entry in self.entries(watcher.resource, watcher.namespace):
                if watcher.matches(entry.obj):
                    first.append(b'{"type":"ADDED","object":%s}\n' % entry.raw)
        else:
            compacted = self._compacted.get(key, 0)
            if since < compacted:
                raise gone(since, compacted + 1)
            for event in self._history.get(key, ()):
                if event.rv > since:
                    line = watcher.translate(event)
                    if line is not None:
                        first.append(line)
        self._watchers.setdefault(key, set()).add(watcher)
        return first

    def unwatch(self, watcher: Watcher) -> None:
        """Stop delivering events to ``watcher``."""
        self._watchers.get(watcher.resource.key, set()).discard(watcher)

    def close_watches(self) -> None:
        """End every open watch (server shutdown)."""
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)
            watchers.clear()
