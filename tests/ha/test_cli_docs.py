"""The reference page of ``lsst-hub-ha`` lists every option the wrapper has, with its default."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from lsst_hub.ha import cli, settings

pytestmark = pytest.mark.line_independent

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "lsst-hub-ha.md"


def test_every_option_is_documented_with_its_default() -> None:
    text = PAGE.read_text()
    rows = dict(re.findall(r"^\| `(--[a-z-]+)` \| ([^|]+) \|", text, re.MULTILINE))
    options = {
        a.option_strings[0]: a.default
        for a in cli._parser()._actions
        if a.option_strings and a.option_strings[0] != "-h"
    }
    assert set(rows) == set(options)
    for option, default in options.items():
        if default is None:  # computed at start: the page says from what
            continue
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert f"`{shown}`" in rows[option], option
    usage = text.split("```text", 1)[1].split("```", 1)[0]
    for option in options:
        assert option in usage


def test_the_console_script_is_installed() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert {e.value for e in scripts if e.name == "lsst-hub-ha"} == {"lsst_hub.ha.cli:main"}


def test_the_defaults_are_those_the_issue_asked_for() -> None:
    # Shorter than Kubernetes' controllers' 15/10/2 s: a hub outage is felt by people.
    s, command = cli.parse_args(["--", "jupyterhub"])
    assert (s.lease_name, s.lease_duration, s.renew_deadline, s.retry_period) == (
        "jupyterhub-hub",
        10,
        7,
        2,
    )
    assert command == ["jupyterhub"] and settings.DEFAULT_STOP_TIMEOUT == 20
