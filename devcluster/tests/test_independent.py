"""The stand-in stands apart: it imports nothing from the product it tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import devcluster

pytestmark = pytest.mark.line_independent

PACKAGE = Path(devcluster.__file__).parent


def test_no_module_imports_lsst_hub() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "lsst_hub"]
    assert offenders == []


def test_serving_loads_no_lsst_hub_module(tmp_path: Path) -> None:
    code = (
        "import sys, devcluster, devcluster.__main__, devcluster.testing\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'lsst_hub'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "[]"
