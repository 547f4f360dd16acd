"""Home directory validation: a table of hostile and ordinary inputs."""

from __future__ import annotations

import re

import pytest

from lsst_hub.spawner.paths import (
    HomePathError,
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
def test_accepted_homes_are_normalised(home: str, expected: str) -> None:
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
