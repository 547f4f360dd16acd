"""What the hub image's build does, without a container engine.

The chart's hub image (``quay.io/jupyterhub/k8s-hub:4.4.0``) is its pinned packages
(``helm-values/z2jh/hub-image-4.4.0/requirements.txt``) installed from wheels with
``pip install --no-index --find-links``; ``helm-values/hub-image/Dockerfile`` then runs
one ``pip install`` of lsst-hub's wheel on top. Here: a wheelhouse of the pins (built
once into ``.tools/hub-image-wheels/<hash>``, from pip's cache after the first time), a
clean virtual environment with exactly those pins, then the Dockerfile's own ``pip
install`` arguments against it.

``python -m tests.deploy.hub_image_support`` fills the wheelhouse (``scripts/setup.sh``
does, so that the test does not download).

:func:`shared_hub_env` builds that environment once and shares it between pytest runs
(side by side or later): under a file lock in ``.tools/hub-image-envs``, keyed by a
hash of the pins, the Dockerfile, lsst-hub's wheel, this module and the Python. A run of
the test command (``scripts/test.sh`` sets ``LSST_HUB_TEST_RUN``; only its JupyterHub 6
suite runs these line-independent tests) always makes one fresh build on a clean
environment; pytest run by hand reuses any build with the same key. The build's
record (``build.json``: what was installed before and after the Dockerfile's ``pip
install``, and its output) is what the tests read.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PINS = ROOT / "helm-values" / "z2jh" / "hub-image-4.4.0" / "requirements.txt"
DOCKERFILE = ROOT / "helm-values" / "hub-image" / "Dockerfile"
WHEELHOUSES = ROOT / ".tools" / "hub-image-wheels"
HUB_ENVS = ROOT / ".tools" / "hub-image-envs"
#: Set by scripts/test.sh, one value per run of the test command.
RUN_VARIABLE = "LSST_HUB_TEST_RUN"
#: Builds kept (about 250 MB each): the newest, and the one before for a run still using it.
KEEP_BUILDS = 2


def pip(*args: str | Path, python: Path | None = None, timeout: float = 600) -> str:
    """Run this interpreter's pip (on ``python``'s environment if given); its stdout."""
    target = ["--python", str(python)] if python else []
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *target, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        command = " ".join(map(str, args))
        raise RuntimeError(f"pip {command} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def wheelhouse() -> Path:
    """Wheels of every pin of the chart's hub image (made once per requirements file)."""
    digest = hashlib.sha256(PINS.read_bytes()).hexdigest()[:16]
    directory = WHEELHOUSES / digest
    done = directory / ".complete"
    if not done.exists():
        directory.mkdir(parents=True, exist_ok=True)
        # --no-deps: the file is a complete freeze. psycopg2 has no wheels on PyPI: pip
        # builds it (gcc, libpq-dev), as the chart's own image build does.
        pip("wheel", "--no-deps", "-q", "-r", PINS, "-w", directory, timeout=1200)
        done.write_text("ok\n")
    return directory


@dataclass
class DockerInstall:
    """The Dockerfile's wheel installation: ``ARG`` default, ``COPY`` and ``pip install``."""

    version: str  # ARG LSST_HUB_VERSION's default
    copy_source: str  # the COPY source, ARG substituted (relative to the build context)
    copy_dest: str
    pip_args: list[str]  # after "python3 -m pip", ARG substituted

    @property
    def wheel_name(self) -> str:
        return Path(self.copy_source).name


def docker_install() -> DockerInstall:
    """Read ``helm-values/hub-image/Dockerfile``'s installation of lsst-hub."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    (arg,) = [ln for ln in lines if ln.startswith("ARG LSST_HUB_VERSION=")]
    version = arg.partition("=")[2]

    def expand(word: str) -> str:
        return word.replace("${LSST_HUB_VERSION}", version).replace("$LSST_HUB_VERSION", version)

    (copy,) = [ln.split()[1:] for ln in lines if ln.startswith("COPY ")]
    (run,) = [ln for ln in lines if ln.startswith("RUN ") and "pip install" in ln]
    first = run.removeprefix("RUN ").split("&&")[0]
    words = [expand(w) for w in shlex.split(first)]
    assert words[:3] == ["python3", "-m", "pip"], words
    return DockerInstall(version, expand(copy[0]), expand(copy[1]), words[3:])


def installed(python: Path) -> dict[str, str]:
    """``{normalized name: version}`` of what is installed in ``python``'s environment."""
    freeze = pip("list", "--format=freeze", python=python)
    pairs = (line.split("==") for line in freeze.splitlines() if "==" in line)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pairs}


@dataclass
class Dist:
    """The sdist and wheel ``python -m build`` made from the checkout."""

    sdist: Path
    wheel: Path


def build_dist(out: Path) -> Dist:
    """``python -m build`` of the checkout: the sdist, then the wheel from the sdist."""
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dist(sdist, wheel)


@dataclass
class HubEnv:
    """A virtual environment like the hub image's Python."""

    python: Path
    before: dict[str, str]  # the chart's pins
    after: dict[str, str]  # with lsst-hub installed as the Dockerfile does
    pip_output: str = ""  # what the Dockerfile's pip install printed

    @property
    def bin(self) -> Path:
        return self.python.parent


def build_hub_env(wheel: Path, directory: Path) -> HubEnv:
    """The chart's pins, then the Dockerfile's ``pip install`` of ``wheel``."""
    venv = directory / "venv"
    # No pip inside (pip runs from outside with --python): the pins are all there is.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # As the chart's image: every pin, from wheels, nothing else. --no-compile:
    # byte-compiling 80 packages is most of the time, and changes nothing.
    pip("install", "-q", "--no-compile", "--no-index", "--find-links", wheelhouse(),
        "--no-deps", "-r", PINS, python=python)  # fmt: skip
    before = installed(python)

    # As the Dockerfile: COPY the wheel into place, then its RUN line's pip arguments.
    install = docker_install()
    context = directory / "build-context"
    (context / Path(install.copy_source).parent).mkdir(parents=True)
    (context / install.copy_source).write_bytes(wheel.read_bytes())
    args: list[Any] = [
        str(context / install.copy_source) if a.startswith(install.copy_dest) else a
        for a in install.pip_args
        if a != "--no-cache-dir"  # the image keeps no cache; here pip's cache saves downloads
    ]
    assert args[0] == "install" and any(a.endswith(install.wheel_name) for a in args), args
    output = pip(*args, python=python)
    return HubEnv(python, before, installed(python), output)


def build_key(wheel: Path) -> str:
    """What a build depends on: pins, Dockerfile, wheel, this module, the Python."""
    digest = hashlib.sha256()
    for part in (PINS, DOCKERFILE, wheel, Path(__file__)):
        digest.update(hashlib.sha256(part.read_bytes()).digest())
    digest.update(f"{sys.version} {getattr(sys, '_base_executable', '')}".encode())
    return digest.hexdigest()[:16]


def shared_hub_env(wheel: Path) -> HubEnv:
    """:func:`build_hub_env` of ``wheel``, made once and shared (see the module docstring)."""
    key, run = build_key(wheel), os.environ.get(RUN_VARIABLE, "")
    HUB_ENVS.mkdir(parents=True, exist_ok=True)
    with (HUB_ENVS / ".lock").open("w") as lock:
        # Held while looking and building: the other suite waits, then reuses the build.
        fcntl.flock(lock, fcntl.LOCK_EX)
        for record in _records():
            if record["key"] == key and (not run or record["run"] == run):
                return HubEnv(
                    Path(record["python"]), record["before"], record["after"], record["pip"]
                )
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        directory = HUB_ENVS / f"{stamp}-{key}-{os.getpid()}"
        try:
            env = build_hub_env(wheel, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        record = {
            "key": key,
            "run": run,
            "built": stamp,
            "python": str(env.python),
            "before": env.before,
            "after": env.after,
            "pip": env.pip_output,
        }
        # Written last: a directory without it is an interrupted build.
        (directory / "build.json").write_text(json.dumps(record, indent=1))
        # Older builds go (under the lock, so a directory without a record is dead).
        complete = [d for d in sorted(HUB_ENVS.glob("2*-*"), reverse=True)
                    if (d / "build.json").exists()]  # fmt: skip
        for old in set(HUB_ENVS.glob("2*-*")) - set(complete[:KEEP_BUILDS]):
            shutil.rmtree(old, ignore_errors=True)
        return env


def _records() -> list[dict[str, Any]]:
    """Complete builds' records, newest first."""
    records = []
    for path in sorted(HUB_ENVS.glob("2*-*/build.json"), reverse=True):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return records


if __name__ == "__main__":
    print(f"hub image pins: {wheelhouse()}")
