"""Sphinx configuration for the newsletter documentation (Markdown pages through MyST).

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (the README names it;
.ci/run runs it with warnings as errors, so a broken link or reference fails CI).

reference/*.md and developers/benchmarks.md are generated from the code (``python -m
newsletter.cli.reference docs/reference``, ``python benchmarks/report.py``): never edit them.
Their headings get anchors like every page's: ``reference/commands.md#newsletter-send``,
``reference/settings.md#smtp``, ``reference/checks.md#the-members-list``.
"""

from __future__ import annotations

import newsletter

project = "newsletter"
author = "newsletter contributors"
copyright = "2023–2026, newsletter contributors"
release = newsletter.__version__
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence", "deflist", "attrs_inline"]
# Headings up to level 3 get anchors, so pages can link to `page.md#a-section`.
myst_heading_anchors = 3

exclude_patterns = ["_build", "README.md"]
html_theme = "furo"
html_title = "newsletter"
html_static_path: list[str] = []
