"""Finding the classes that deployment files name by dotted path."""

from __future__ import annotations

import importlib
from typing import Any

import pytest


def class_or_skip(dotted: str) -> Any:
    """The class ``module.Class`` names; skips the test while it is not importable."""
    module_name, _, class_name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        pytest.skip(f"{dotted} is not importable yet")
