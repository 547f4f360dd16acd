"""Home directory validation: a table of hostile and ordinary inputs."""

from __future__ import annotations

import re

import pytest

from lsst_hub.spawner.paths import (
    HomePathError,
    check_home_owner,
    check_home_pattern,
    default_home_pattern,
    expand_placeholders,
    home_relative_to,
    safe_name,
    validate_home,
    validate_mount_path,
)

ROOTS = ["/gpfs/home"]


@pytest.mark.parametrize(
    ("home", "expected"),
    [
        ("/gpfs/home/alice", "/gpfs/home/alice"),
        ("/gpfs/home/alice/", "/gpfs/home/alice"),
        ("/gpfs/home//alice", "/gpfs/home/alice"),
        ("/gpfs/home/./alice", "/gpfs/home/alice"),
        ("//gpfs/home/alice", "/gpfs/home/alice"),
        ("/gpfs/home/a/alice", "/gpfs/home/a/alice"),
    ],
)
def test_accepted_homes_are_normalized(home: str, expected: str) -> None:
    assert validate_home(home, ROOTS) == expected


@pytest.mark.parametrize(
    ("home", "why"),
    [
        ("", "empty"),
        (None, "empty or not a string"),
        (1234, "not a string"),
        ("gpfs/home/alice", "not an absolute path"),
        ("alice", "not an absolute path"),
        ("/gpfs/home/alice/../bob", "'..'"),
        ("/gpfs/home/../../etc", "'..'"),
        ("/gpfs/home/..", "'..'"),
        ("/gpfs/home", "home root itself"),
        ("/gpfs/home/", "home root itself"),
        ("/gpfs/home/.", "home root itself"),
        ("/gpfs/homeother/alice", "not under any allowed home root"),
        ("/gpfs/scratch/alice", "not under any allowed home root"),
        ("/", "not under any allowed home root"),
        ("/etc", "not under any allowed home root"),
        ("/gpfs/home/alice\0/x", "NUL"),
    ],
)
def test_refused_homes_say_why(home: object, why: str) -> None:
    with pytest.raises(HomePathError, match=re.escape(why)):
        validate_home(home, ROOTS)


def test_several_roots() -> None:
    roots = ["/gpfs/home", "/sdf/home/"]
    assert validate_home("/sdf/home/b/bob", roots) == "/sdf/home/b/bob"
    with pytest.raises(HomePathError):
        validate_home("/sdf/home", roots)


@pytest.mark.parametrize("root", ["relative", "/gpfs/../etc", ""])
def test_bad_roots_are_refused(root: str) -> None:
    with pytest.raises(HomePathError, match="allowed home root"):
        validate_home("/gpfs/home/alice", [root])


def test_relative_subpath() -> None:
    assert home_relative_to("/gpfs/home/a/alice", "/gpfs/home") == "a/alice"
    with pytest.raises(HomePathError):
        home_relative_to("/gpfs/other/alice", "/gpfs/home")


@pytest.mark.parametrize(
    "names",
    [
        ("alice", "Alice"),
        ("a.b", "a-b"),
        ("x@example.org", "x-example-org"),
        ("a--b", "a-b"),
    ],
)
def test_safe_names_never_collide(names: tuple[str, str]) -> None:
    a, b = (safe_name(n, "home-") for n in names)
    assert a != b
    for name in (a, b):
        assert name.startswith("home-")
        assert len(name) <= 63
        assert name == name.lower()


def test_plain_names_stay_readable() -> None:
    assert safe_name("alice", "gpfs-home-") == "gpfs-home-alice"
    assert len(safe_name("x" * 200, "gpfs-home-")) <= 63


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("/home/alice", "/home/alice"),
        ("/home//alice/", "/home/alice"),
        ("home/alice", None),
        ("/home/../etc", None),
        ("/", None),
        ("//", None),
        ("/home/a\0", None),
    ],
)
def test_mount_path(path: str, ok: str | None) -> None:
    if ok is None:
        with pytest.raises(HomePathError):
            validate_mount_path(path)
    else:
        assert validate_mount_path(path) == ok


# -- a home belongs to its person --------------------------------------------------


def test_placeholders_are_expanded_once() -> None:
    values = {"home_directory": "/gpfs/home/{uid}", "username": "alice", "uid": "20001"}
    # The home holds "{uid}": it stays as written, so the path checked is the path mounted.
    assert expand_placeholders("{home_directory}", values) == "/gpfs/home/{uid}"
    assert expand_placeholders("{username}:{uid}:{other}", values) == "alice:20001:{other}"
    assert expand_placeholders("/x/{username}", {"username": "{uid}", "uid": "1"}) == "/x/{uid}"


DEFAULT = default_home_pattern(ROOTS)


@pytest.mark.parametrize(
    ("home", "user", "pattern", "ok"),
    [
        ("/gpfs/home/alice", "alice", DEFAULT, True),
        ("/gpfs/home/bob", "alice", DEFAULT, False),  # another person's home
        ("/gpfs/home/bob/alice", "alice", DEFAULT, False),  # inside another's home
        ("/gpfs/home/alice/bob", "alice", DEFAULT, False),  # a directory, not the home
        ("/gpfs/home/{uid}", "alice", DEFAULT, False),  # a placeholder, not a name
        ("/gpfs/home/alicex", "alice", DEFAULT, False),
        ("/gpfs/home/axb", "a.b", DEFAULT, False),  # the username is matched literally
        ("/gpfs/home/a.b", "a.b", DEFAULT, True),
        ("/gpfs/home/a/alice", "alice", DEFAULT, False),  # another layout: configure it
        ("/gpfs/home/a/alice", "alice", "/gpfs/home/[a-z]/{username}", True),
        ("/gpfs/home/a/bob", "alice", "/gpfs/home/[a-z]/{username}", False),
        ("/gpfs/home/alice/a/alice", "alice", "/gpfs/home/[a-z]/{username}", False),
        ("/gpfs/home/20001", "alice", "/gpfs/home/{uid}", True),
        ("/gpfs/home/20002", "alice", "/gpfs/home/{uid}", False),
    ],
)
def test_home_owner(home: str, user: str, pattern: str, ok: bool) -> None:
    if ok:
        check_home_owner(home, user, 20001, pattern)
    else:
        with pytest.raises(HomePathError, match="is not the home of"):
            check_home_owner(home, user, 20001, pattern)


def test_default_pattern_covers_every_root() -> None:
    pattern = default_home_pattern(["/gpfs/home", "/sdf/home/"])
    check_home_owner("/sdf/home/bob", "bob", 1, pattern)
    check_home_owner("/gpfs/home/bob", "bob", 1, pattern)
    with pytest.raises(HomePathError):
        check_home_owner("/sdf/bob", "bob", 1, pattern)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [("/gpfs/home/.*", "names neither"), ("/gpfs/home/({username}", "not a regular expression")],
)
def test_unusable_patterns_are_refused(pattern: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_home_pattern(pattern)
