"""Sphinx configuration for the lsst-hub documentation.

Built with ``sphinx-build -W --keep-going -b html docs docs/_build/html``: every
warning is an error. The configuration reference is generated from the traits of
``LDAPAuthenticator`` and ``LSSTSpawner`` by autodoc-traits.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

project = "lsst-hub"
author = "lsst-hub contributors"
copyright = "lsst-hub contributors"

try:
    from lsst_hub import __version__ as release
except ImportError:  # pragma: no cover - the package is installed in every venv we build
    release = "dev"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "autodoc_traits",
    # Diagrams are rendered at build time by Debian's graphviz: no network.
    "sphinx.ext.graphviz",
]
graphviz_output_format = "svg"

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Napoleon reads the NumPy-style docstrings of lsst_hub.
napoleon_numpy_docstring = True
napoleon_google_docstring = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"

# No network at build time: intersphinx inventories would be fetched, so none are used.
intersphinx_mapping: dict[str, Any] = {}

# As JupyterHub's own documentation; wide code blocks scroll instead of being cut.
html_theme = "pydata_sphinx_theme"
html_theme_options: dict[str, Any] = {"navigation_with_keys": False}
html_title = f"lsst-hub {release}"
html_static_path: list[str] = []

# Traits inherited from JupyterHub and KubeSpawner are documented upstream; the
# reference lists the traits lsst_hub defines or overrides (their help strings are
# the single source). Every other member is still reachable through Python.
_OWN_PREFIX = "lsst_hub"


def _skip_inherited_traits(
    app: Any, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    owner = getattr(obj, "this_class", None)
    if owner is not None and what in ("class", "configurable"):
        return not owner.__module__.startswith(_OWN_PREFIX)
    return None


class MetricsTable(SphinxDirective):
    """``{lsst-hub-metrics}``: a table of the Prometheus metrics lsst-hub registers,
    read from the registry after importing the package (never written by hand)."""

    def run(self) -> list[Any]:
        import importlib

        from prometheus_client import REGISTRY

        for module in ("lsst_hub.metrics", "lsst_hub.auth", "lsst_hub.spawner"):
            importlib.import_module(module)
        rows = []
        collectors = list(getattr(REGISTRY, "_collector_to_names", {}))
        for collector in collectors:
            name = getattr(collector, "_name", "")
            if not name.startswith("lsst_hub_"):
                continue
            kind = type(collector).__name__.lower()
            shown = f"{name}_total" if kind == "counter" else name
            labels = ", ".join(f"`{label}`" for label in getattr(collector, "_labelnames", ()))
            doc = " ".join(str(getattr(collector, "_documentation", "")).split())
            rows.append(f"| `{shown}` | {kind} | {labels or '—'} | {doc} |")
        text = "| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n"
        text += "\n".join(sorted(rows)) + "\n"
        return self.parse_text_to_nodes(text)


def setup(app: Any) -> None:
    app.add_directive("lsst-hub-metrics", MetricsTable)
    app.connect("autodoc-skip-member", _skip_inherited_traits)
