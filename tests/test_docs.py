"""Docs that cannot drift: generated parts are current, README commands are the CI's."""

from __future__ import annotations

import importlib.util
import re

from conftest import ROOT


def _gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_are_current():
    for path, content in _gen_docs().render().items():
        assert path.read_text() == content, f"{path.name} is stale: run python scripts/gen_docs.py"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"^python3 -m venv .*$", readme, flags=re.M)
    assert len(commands) == 2, commands
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in ci
