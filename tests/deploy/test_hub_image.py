"""The package a site installs, and the hub image built from it.

The sdist and wheel are built from the checkout (``python -m build``: the sdist, then
the wheel from the sdist) and checked with ``twine check --strict``. A clean virtual
environment gets exactly the chart's hub image pins, the way the image has them
(:mod:`tests.deploy.hub_image_support`); then the Dockerfile's own ``pip install`` line
installs the wheel. No container engine runs here: this is the image's Python
environment, on this machine's Python (3.11; the image has 3.12).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.deploy.chart_support import lay_out_hub_config, render
from tests.deploy.hub_image_support import PINS, ROOT, Dist, HubEnv, docker_install, pip

# The hub image's own environment (its pins, JupyterHub 5.5) does the work, whichever
# line the tests run on.
pytestmark = [pytest.mark.slow, pytest.mark.line_independent]


def package_version() -> str:
    text = (ROOT / "lsst_hub" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match
    return match.group(1)


def test_twine_check_passes(package_dist: Dist) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict",
         str(package_dist.sdist), str(package_dist.wheel)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_one_version_everywhere(package_dist: Dist) -> None:
    version = package_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "a release version a site can pin"
    assert package_dist.wheel.name == f"lsst_hub-{version}-py3-none-any.whl"
    assert package_dist.sdist.name == f"lsst_hub-{version}.tar.gz"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)
    assert releases and releases[0] == version, "CHANGELOG.md's newest release"
    install = docker_install()
    assert install.version == version, "the Dockerfile's default LSST_HUB_VERSION"
    assert install.wheel_name == package_dist.wheel.name


def test_license_ships_and_matches_the_metadata(package_dist: Dist) -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("BSD 3-Clause License")
    with zipfile.ZipFile(package_dist.wheel) as whl:
        names = whl.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        fields = whl.read(metadata).decode()
        (shipped,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert whl.read(shipped).decode() == license_text
    assert "License-Expression: BSD-3-Clause" in fields.splitlines()
    with tarfile.open(package_dist.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    assert {"LICENSE", "CHANGELOG.md", "pyproject.toml"} <= members
    assert "helm-values/hub-image/Dockerfile" in members


def test_wheel_holds_the_product_only_no_stand_in(package_dist: Dist) -> None:
    # The Kubernetes API stand-in is its own distribution (devcluster/): never in the wheel.
    with zipfile.ZipFile(package_dist.wheel) as whl:
        names = whl.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        headers = whl.read(metadata).decode().split("\n\n", 1)[0].splitlines()
        sources = {n: whl.read(n).decode() for n in names if n.endswith(".py")}
    assert "lsst_hub/spawner/__init__.py" in names
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"lsst_hub"}
    assert [n for n in names if "devcluster" in n] == []
    uses = re.compile(r"^\s*(from|import)\s+devcluster\b", re.MULTILINE)
    assert [n for n, text in sources.items() if uses.search(text)] == []
    requirements = [h for h in headers if h.startswith(("Requires-Dist:", "Provides-Extra:"))]
    assert requirements  # the headers were read
    assert [h for h in requirements if "devcluster" in h.lower()] == []


# -- the image's environment ---------------------------------------------------------


def pinned() -> dict[str, str]:
    pins = {}
    for line in PINS.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("#")[0].strip().split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def test_clean_environment_holds_exactly_the_chart_pins(hub_image_env: HubEnv) -> None:
    assert hub_image_env.before == pinned()
    assert hub_image_env.before["jupyterhub"] == "5.5.0"


def run_in(python: Path, code: str, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in the image environment, away from the checkout (no PYTHONPATH)."""
    result = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120,
        cwd=python.parent, env={"PATH": "/usr/bin:/bin", **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_only_what_our_lower_bounds_exclude_is_upgraded(hub_image_env: HubEnv) -> None:
    changed = {
        n: (v, hub_image_env.after[n])
        for n, v in hub_image_env.before.items()
        if hub_image_env.after[n] != v
    }
    # Each changed pin is excluded by a requirement of something installed (lsst-hub's
    # own lower bounds, or what the upgraded packages in turn require).
    report = json.loads(
        run_in(
            hub_image_env.python,
            f"""
            import json
            from importlib.metadata import distributions
            from packaging.requirements import Requirement
            from packaging.utils import canonicalize_name
            old = {json.dumps({n: v for n, (v, _) in changed.items()})}
            why = {{n: [] for n in old}}
            for d in distributions():
                for text in d.requires or []:
                    r = Requirement(text)
                    if r.marker and not r.marker.evaluate({{"extra": ""}}):
                        continue
                    name = canonicalize_name(r.name)
                    if name in old and not r.specifier.contains(old[name], prereleases=True):
                        why[name].append(d.metadata["Name"] + ": " + text)
            print(json.dumps(why))
            """,
        )
    )
    unexplained = {n: changed[n] for n, reasons in report.items() if not reasons}
    assert unexplained == {}, f"upgraded beyond what any requirement needs: {unexplained}"
    assert "jupyterhub-kubespawner" in changed  # 7.0.0 -> 7.1+: our lower bound
    assert hub_image_env.after["jupyterhub"] == "5.5.0"
    added = set(hub_image_env.after) - set(hub_image_env.before)
    assert {"lsst-hub", "numpy"} <= added
    assert hub_image_env.after["lsst-hub"] == package_version()
    # The Dockerfile's pip install itself said so (its output, recorded with the build).
    installed_line = hub_image_env.pip_output.strip().splitlines()[-1]
    assert installed_line.startswith("Successfully installed")
    assert f"lsst-hub-{package_version()}" in installed_line.split()


def test_environment_is_consistent(hub_image_env: HubEnv) -> None:
    out = pip("check", python=hub_image_env.python)
    assert "No broken requirements found" in out


def test_entry_points_load_through_jupyterhub(hub_image_env: HubEnv) -> None:
    # JupyterHub resolves authenticator_class / spawner_class names through the entry
    # points, as the chart's hub.config.JupyterHub settings name them.
    out = run_in(
        hub_image_env.python,
        """
        import json, lsst_hub, jupyterhub
        from jupyterhub.app import JupyterHub
        from lsst_hub.auth import LDAPAuthenticator
        from lsst_hub.spawner import LSSTSpawner
        app = JupyterHub(authenticator_class="lsst-ldap", spawner_class="lsst-kube")
        print(json.dumps({
            "authenticator": app.authenticator_class is LDAPAuthenticator,
            "spawner": app.spawner_class is LSSTSpawner,
            "lsst_hub": lsst_hub.__file__,
            "jupyterhub": jupyterhub.__version__,
        }))
        """,
    )
    loaded = json.loads(out.strip().splitlines()[-1])
    assert loaded["authenticator"] is True
    assert loaded["spawner"] is True
    assert loaded["jupyterhub"] == "5.5.0"
    # Imported from the installed wheel, not from the checkout.
    assert Path(loaded["lsst_hub"]).is_relative_to(hub_image_env.python.parent.parent)


def test_chart_config_loads_our_plugins_and_services(hub_image_env: HubEnv, tmp_path: Path) -> None:
    # The chart's own jupyterhub_config.py + z2jh.py with the rendered ConfigMap and
    # Secret and the hub container's environment, in the image environment.
    config_dir = tmp_path / "etc-jupyterhub"
    env = lay_out_hub_config(render(), config_dir, {"lsst-hub-ldap/password": "bind-pw"})
    out = run_in(
        hub_image_env.python,
        f"""
        import json, signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        before = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        from traitlets.config.loader import PyFileConfigLoader
        c = PyFileConfigLoader("jupyterhub_config.py", path={str(config_dir)!r}).load_config()
        print(json.dumps({{
            "sigint_ignored_before": before,
            "sigint_after": getattr(signal.getsignal(signal.SIGINT), "__name__", "?"),
            "authenticator_class": c.JupyterHub.authenticator_class,
            "spawner_class": c.JupyterHub.spawner_class,
            "services": {{s["name"]: s["command"] for s in c.JupyterHub.services}},
            "init_containers": c.KubeSpawner.get("init_containers", []),
            "hub_instance": c.LSSTSpawner.hub_instance,
            "namespace": c.KubeSpawner.namespace,
            "cleanup_servers": c.JupyterHub.cleanup_servers,
            "password": c.LDAPAuthenticator.search_bind_password,
        }}))
        """,
        env=env,
    )
    loaded = json.loads(out.strip().splitlines()[-1])
    assert (loaded["authenticator_class"], loaded["spawner_class"]) == ("lsst-ldap", "lsst-kube")
    assert loaded["password"] == "bind-pw"
    assert loaded["cleanup_servers"] is False
    assert loaded["namespace"] == "jupyterhub"
    # No metadata-blocking init container: the overlay turns it off.
    assert loaded["init_containers"] == []
    culler = loaded["services"]["jupyterhub-idle-culler"]
    assert "--url=http://localhost:8081/hub/api" in culler
    assert "--timeout=3600" in culler
    (orphans,) = [cmd for name, cmd in loaded["services"].items() if "orphan" in name]
    assert "--hub-api-url=http://localhost:8081/hub/api" in orphans
    assert "--namespace=jupyterhub" in orphans
    assert loaded["hub_instance"] == env["HELM_RELEASE_NAME"] == "jhub"
    assert f"--hub-instance={loaded['hub_instance']}" in orphans
    # Loaded by a hub that ignores SIGINT (under a wrapper or init that ignores it), the
    # configuration gives the signal its default back before the hub starts the services.
    assert loaded["sigint_ignored_before"] is True
    assert loaded["sigint_after"] == "default_int_handler"


def test_chart_metadata_blocker_is_refused_by_the_spawner(
    hub_image_env: HubEnv, tmp_path: Path
) -> None:
    # A site that turns blockWithIptables on gets the chart's privileged root init
    # container in every pod; LSSTSpawner refuses to start such a pod and says which
    # setting to change (the overlay keeps it off and blocks metadata by NetworkPolicy).
    blocked = tmp_path / "block-with-iptables.yaml"
    blocked.write_text("singleuser:\n  cloudMetadata:\n    blockWithIptables: true\n")
    config_dir = tmp_path / "etc-jupyterhub"
    env = lay_out_hub_config(render(blocked), config_dir, {"lsst-hub-ldap/password": "pw"})
    # KubeSpawner loads a client configuration when built; nothing is called.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: x, user: {token: unused}}]\n"
        "contexts: [{name: x, context: {cluster: x, user: x}}]\n"
    )
    env["KUBECONFIG"] = str(kubeconfig)
    out = run_in(
        hub_image_env.python,
        f"""
        import asyncio, json
        from traitlets.config.loader import PyFileConfigLoader
        from lsst_hub.spawner import LSSTSpawner
        c = PyFileConfigLoader("jupyterhub_config.py", path={str(config_dir)!r}).load_config()

        async def main():
            spawner = LSSTSpawner(_mock=True, config=c)
            print(json.dumps({{
                "init": [i.name for i in spawner.init_containers],
                "problems": spawner.configured_container_problems(),
            }}))

        asyncio.run(main())
        """,
        env=env,
    )
    loaded = json.loads(out.strip().splitlines()[-1])
    assert loaded["init"] == ["block-cloud-metadata"]
    (problem,) = loaded["problems"]
    assert "blockWithIptables" in problem
    assert "privileged" in problem
