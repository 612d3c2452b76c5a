"""The house rules of README "Architecture", checked on the code itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _loaded_by(module: str) -> set[str]:
    """The modules a fresh interpreter has loaded after importing ``module``."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["newsletter.journal", "newsletter.smtp"])
def test_low_layers_do_not_load_the_upper_ones(module: str) -> None:
    # The journal and the transport are handed an Envelope; they must not drag in the
    # message builder, the renderer, the CSV reader or the address validator.
    loaded = _loaded_by(module)
    upper = {
        "newsletter.message",
        "newsletter.render",
        "newsletter.recipients",
        "newsletter.suppression",
        "newsletter.campaign",
        "email_validator",
        "jinja2",
    }
    assert module in loaded
    assert not loaded & upper, sorted(loaded & upper)
