"""LSSTSpawner leans on a few private parts of KubeSpawner, listed and explained in
``lsst_hub/spawner/spawner.py``'s docstring: these tests pin the KubeSpawner
versions that list was checked against, and that the list is complete."""

from __future__ import annotations

import re
from pathlib import Path

import kubespawner
from jupyterhub.spawner import Spawner
from kubespawner import KubeSpawner
from packaging.version import Version
from traitlets import HasTraits

from lsst_hub.spawner import spawner as spawner_module
from lsst_hub.spawner.spawner import KUBESPAWNER_CHECKED, KUBESPAWNER_PRIVATE

SPAWNER_PACKAGE = Path(spawner_module.__file__).parent
# A private attribute reached through the spawner object, whatever its name in the code.
_ACCESS = re.compile(r"\b(?:self|super\(\)|spawner|cls|type\(self\))\.(_[A-Za-z]\w*)")


def upstream_private(name: str) -> bool:
    """Whether ``name`` is private and KubeSpawner or JupyterHub's Spawner define it
    (not traitlets, which keeps its bookkeeping on every class)."""
    return (
        name.startswith("_")
        and not name.startswith("__")
        and not hasattr(HasTraits, name)
        and any(name in vars(cls) for cls in (KubeSpawner, Spawner))
    )


def test_kubespawner_is_a_checked_version() -> None:
    low, high = KUBESPAWNER_CHECKED
    assert Version(low) <= Version(kubespawner.__version__) < Version(high), (
        f"KubeSpawner {kubespawner.__version__} is not a version LSSTSpawner was checked "
        f"against ({low} <= version < {high}). In the new KubeSpawner, check the private "
        f"parts LSSTSpawner uses ({', '.join(KUBESPAWNER_PRIVATE)}), as "
        "lsst_hub/spawner/spawner.py's docstring explains: that start() still wraps "
        "_start() in the future progress() follows, and that _start() still calls "
        "load_user_options, then get_pod_manifest (which calls get_env), then "
        "modify_pod_hook, then creates the pod (deleting a pod of the same name on 409). "
        "Then widen KUBESPAWNER_CHECKED."
    )


def test_the_private_parts_used_are_the_listed_ones() -> None:
    used = set()
    for path in SPAWNER_PACKAGE.glob("*.py"):
        used |= {name for name in _ACCESS.findall(path.read_text()) if upstream_private(name)}
    overridden = {name for name in vars(spawner_module.LSSTSpawner) if upstream_private(name)}
    assert used | overridden == set(KUBESPAWNER_PRIVATE)
    for name in KUBESPAWNER_PRIVATE:
        assert f"``{name}``" in str(spawner_module.__doc__), f"{name} is not explained"
