"""Home directory checks and Kubernetes-safe names (pure, standard library + slugs).

A home directory comes from the directory service and ends up as a hostPath or a
``subPath`` in a pod: a wrong value would mount someone else's data, or the whole
file system. :func:`validate_home` is therefore strict: it refuses rather than
repairs anything that is not plainly a directory below one of the allowed roots.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from kubespawner.slugs import is_valid_object_name, safe_slug

__all__ = [
    "HomePathError",
    "home_relative_to",
    "safe_name",
    "validate_home",
    "validate_mount_path",
]


class HomePathError(ValueError):
    """A home directory that must not be mounted."""


def _normalise_root(root: str) -> str:
    if not isinstance(root, str) or not root.startswith("/") or "\0" in root:
        raise HomePathError(f"allowed home root {root!r} is not an absolute path")
    if ".." in root.split("/"):
        raise HomePathError(f"allowed home root {root!r} contains '..'")
    normal = posixpath.normpath(root)
    # normpath keeps a leading '//' (POSIX leaves its meaning open); we do not.
    return "/" + normal.lstrip("/")


def validate_home(home: object, allowed_roots: Iterable[str]) -> str:
    """Return the normalised home directory, or refuse it.

    Parameters
    ----------
    home
        The ``homeDirectory`` from the person's identity.
    allowed_roots
        Directories homes may live under (``/gpfs/home``). A home must be
        strictly below one of them: the root itself is refused.

    Returns
    -------
    str
        The path with repeated and trailing slashes and ``.`` parts removed.

    Raises
    ------
    HomePathError
        For a non-string, empty, relative path, a NUL byte, any ``..`` part
        (refused, not resolved: ``/gpfs/home/alice/../bob`` names another
        person's home), the root itself, or a path outside every root.
    """
    if not isinstance(home, str) or not home:
        raise HomePathError(f"home directory {home!r} is empty or not a string")
    if "\0" in home:
        raise HomePathError(f"home directory {home!r} contains a NUL byte")
    if not home.startswith("/"):
        raise HomePathError(f"home directory {home!r} is not an absolute path")
    if ".." in home.split("/"):
        raise HomePathError(f"home directory {home!r} contains '..'")
    normal = "/" + posixpath.normpath(home).lstrip("/")
    roots = [_normalise_root(r) for r in allowed_roots]
    for root in roots:
        if normal == root:
            raise HomePathError(
                f"home directory {home!r} is the home root itself, not a directory below it"
            )
        prefix = root if root.endswith("/") else root + "/"
        if normal.startswith(prefix):
            return normal
    raise HomePathError(
        f"home directory {home!r} is not under any allowed home root ({', '.join(roots) or 'none'})"
    )


def validate_mount_path(path: str) -> str:
    """Return a normalised in-pod mount path, or refuse it.

    Raises
    ------
    HomePathError
        For a relative path, a NUL byte, any ``..`` part, or ``/`` itself.
    """
    if not path.startswith("/") or "\0" in path or ".." in path.split("/"):
        raise HomePathError(f"home mount path {path!r} is not a plain absolute path")
    normal = "/" + posixpath.normpath(path).lstrip("/")
    if normal == "/":
        raise HomePathError("the home cannot be mounted over /")
    return normal


def home_relative_to(home: str, root: str) -> str:
    """Return ``home`` relative to ``root`` (both already validated), for a subPath.

    Raises
    ------
    HomePathError
        When ``home`` is not strictly below ``root``.
    """
    normal_root = _normalise_root(root)
    normal = validate_home(home, [normal_root])
    return posixpath.relpath(normal, normal_root)


def safe_name(username: str, prefix: str) -> str:
    """Return ``prefix`` + a DNS-1123 slug of ``username`` that cannot collide.

    Uses KubeSpawner's "safe" slug scheme: a name that is already a valid DNS
    label is kept as it is; any other (upper case, ``@``, ``.``, ``--``, too
    long) becomes a readable stem plus a hash of the full name, so two
    usernames never map to one object name.
    """
    slug = safe_slug(username, max_length=48)
    name = f"{prefix}{slug}"
    if not is_valid_object_name(name):
        raise ValueError(f"cannot make a valid object name from {username!r}")
    return name
