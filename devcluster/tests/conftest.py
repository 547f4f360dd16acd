"""The stand-in's own tests use its pytest plugin, as the product's tests do.

Every test here is marked ``stand_in``: ``scripts/test.sh`` runs the stand-in's
line-independent tests in the JupyterHub 5 suite rather than the 6 one, to even out
the two suites' time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["devcluster.testing"]

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.stand_in)
