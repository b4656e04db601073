"""Sphinx configuration of the skstrf documentation (builds offline, examples not executed)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

# Autodoc imports skstrf.plotting; never open a window while building.
matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import skstrf  # noqa: E402

project = "skstrf"
author = "skstrf developers"
copyright = "skstrf developers"
release = skstrf.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
# Offline build: no intersphinx (it would fetch inventories), so links stay inside skstrf.

# -- autodoc / autosummary / numpydoc -------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
numpydoc_show_class_members = False  # methods are documented by the class template
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- sphinx-gallery: render the example scripts, never run them while building -------
# The examples run in tests/test_examples.py (quick mode); here they are shown as code.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "plot_gallery": "False",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "show_memory": False,
    "show_signature": False,
    # Nothing runs, so there are no times to report (and no sg_execution_times.rst in docs/).
    "write_computation_times": False,
    # Cross-links "Examples using X" from the API pages to the examples that call X.
    "doc_module": ("skstrf",),
    "backreferences_dir": "generated/backreferences",
}

# -- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skstrf {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # No external icon links or version switcher: nothing is fetched at build or view time.
    "icon_links": [],
}
html_static_path: list[str] = []
html_show_sourcelink = False

# -- user guide table of contents --------------------------------------------------------
# Pages in reading order. The user guide's toctree is filled from this list with the pages
# that exist, then any other page of docs/user_guide/ alphabetically, so a page that is
# added or not yet written never breaks the build (``sphinx-build -W``).
USER_GUIDE_ORDER = [
    "data_layout",
    "synthetic",
    "datasets",
    "audio",
    "preprocessing",
    "kernels",
    "solvers",
    "model_selection",
    "feature_spaces",
    "metrics",
    "uncertainty",
    "gpu",
    "out_of_core",
    "bad_inputs",
    "beyond_linear",
]
USER_GUIDE_MARKER = "   .. user-guide-pages"


def user_guide_pages(folder: Path = DOCS / "user_guide") -> list[str]:
    """The user guide pages found in ``folder``, in reading order."""
    found = {p.stem for p in folder.glob("*.rst") if p.stem != "index"}
    return [p for p in USER_GUIDE_ORDER if p in found] + sorted(found - set(USER_GUIDE_ORDER))


def _fill_user_guide_toctree(app, docname: str, source: list[str]) -> None:
    if docname == "user_guide/index":
        entries = "\n".join(f"   {page}" for page in user_guide_pages())
        source[0] = source[0].replace(USER_GUIDE_MARKER, entries)


def _reread_user_guide_index(app, env, added, changed, removed) -> list[str]:
    # The index's toctree depends on which pages exist, not on its own text: re-read it on
    # every build so that incremental builds see added and removed pages.
    return ["user_guide/index"]


def setup(app) -> None:
    app.connect("source-read", _fill_user_guide_toctree)
    app.connect("env-get-outdated", _reread_user_guide_index)

