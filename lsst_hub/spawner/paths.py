"""Home directory checks and Kubernetes-safe names (pure, standard library + slugs).

A home directory comes from the directory service and ends up as a hostPath or a
``subPath`` in a pod: a wrong value would mount someone else's data, or the whole
file system. :func:`validate_home` is therefore strict: it refuses rather than
repairs anything that is not plainly a directory below one of the allowed roots,
and :func:`check_home_owner` refuses a home that is not the person's own.
Placeholders are expanded once (:func:`expand_placeholders`), so the path checked
is the path mounted.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping

from kubespawner.slugs import is_valid_object_name, safe_slug

__all__ = [
    "HOME_PATTERN_PLACEHOLDERS",
    "HomePathError",
    "check_home_owner",
    "check_home_pattern",
    "default_home_pattern",
    "expand_placeholders",
    "home_relative_to",
    "safe_name",
    "validate_home",
    "validate_mount_path",
]

#: The placeholders of :attr:`LSSTSpawner.home_directory_pattern`; one must appear.
HOME_PATTERN_PLACEHOLDERS = ("{username}", "{uid}")


class HomePathError(ValueError):
    """A home directory that must not be mounted."""


def _normalize_root(root: str) -> str:
    if not isinstance(root, str) or not root.startswith("/") or "\0" in root:
        raise HomePathError(f"allowed home root {root!r} is not an absolute path")
    if ".." in root.split("/"):
        raise HomePathError(f"allowed home root {root!r} contains '..'")
    normal = posixpath.normpath(root)
    # normpath keeps a leading '//' (POSIX leaves its meaning open); we do not.
    return "/" + normal.lstrip("/")


def validate_home(home: object, allowed_roots: Iterable[str]) -> str:
    """Return the normalized home directory, or refuse it.

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
    roots = [_normalize_root(r) for r in allowed_roots]
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
    """Return a normalized in-pod mount path, or refuse it.

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
    normal_root = _normalize_root(root)
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


def expand_placeholders(text: str, values: Mapping[str, str]) -> str:
    """Replace each ``{name}`` of ``values`` in ``text``, in one pass.

    A replacement is never scanned again: a home directory that itself holds
    ``{uid}`` stays ``{uid}``, so what was checked is what gets mounted. Other
    braces are left as they are (no ``str.format``: a value cannot reach
    attributes of the objects involved).
    """
    if not values:
        return text
    keys = sorted(values, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape("{" + key + "}") for key in keys))
    return pattern.sub(lambda match: values[match.group(0)[1:-1]], text)


def default_home_pattern(allowed_roots: Iterable[str]) -> str:
    """The home layout assumed without configuration: ``<root>/<username>``.

    A home lies directly below one of ``allowed_roots`` and is named exactly
    like the person, so no home can lie inside another person's.
    """
    roots = sorted({_normalize_root(r).rstrip("/") for r in allowed_roots})
    return "(?:" + "|".join(re.escape(r) for r in roots) + ")/{username}"


def _owner_regex(pattern: str, username: str, uid: int) -> re.Pattern[str]:
    expanded = expand_placeholders(pattern, {"username": re.escape(username), "uid": str(uid)})
    return re.compile(expanded)


def check_home_pattern(pattern: str) -> str:
    """Return ``pattern`` if it is a usable ``home_directory_pattern``, else refuse it.

    Raises
    ------
    ValueError
        When it names neither ``{username}`` nor ``{uid}`` (it would let anyone
        have any home it matches) or is not a regular expression.
    """
    if not any(p in pattern for p in HOME_PATTERN_PLACEHOLDERS):
        raise ValueError(
            f"home_directory_pattern {pattern!r} names neither {{username}} nor {{uid}}: "
            "it would not tie a home to its person"
        )
    try:
        _owner_regex(pattern, "someone", 1000)
    except re.error as exc:
        raise ValueError(
            f"home_directory_pattern {pattern!r} is not a regular expression: {exc}"
        ) from None
    return pattern


def check_home_owner(home: str, username: str, uid: int, pattern: str) -> None:
    """Refuse ``home`` unless it is ``username``'s by ``pattern``.

    Parameters
    ----------
    home
        The home as :func:`validate_home` returned it (normalized).
    username, uid
        Whose home it must be.
    pattern
        A regular expression matched against the *whole* of ``home``, in
        which ``{username}`` stands for the escaped username and ``{uid}``
        for the uid number (:func:`default_home_pattern` without configuration).

    Raises
    ------
    HomePathError
        When the whole path does not match.
    """
    if _owner_regex(pattern, username, uid).fullmatch(home) is None:
        raise HomePathError(
            f"home directory {home!r} is not the home of {username!r}: it does not match "
            f"home_directory_pattern {pattern!r} (with {{username}} = {username!r})"
        )
