"""The README tells the truth: its commands exist and its settings table matches the code."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import REPO

from bots.settings import Settings

pytestmark = pytest.mark.unit

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_first_lines_give_the_run_and_the_test_command() -> None:
    head = README.splitlines()[:6]
    assert any(line.startswith("make run") for line in head), head
    assert any(line.startswith("make test") for line in head), head
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci


def test_every_setting_is_in_the_settings_table() -> None:
    table = README[README.index("## Settings") :]
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in table]
    assert not missing, f"settings missing from the README table: {missing}"


def test_every_variable_in_the_settings_table_is_a_setting() -> None:
    table = README[README.index("## Settings") : README.index("## Licences")]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    named = {n for row in rows for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}
    assert named <= {name.upper() for name in Settings.model_fields}, named


@pytest.mark.parametrize(
    "module", sorted(set(re.findall(r"\.venv/bin/python -m ([a-z_.]+)", README)))
)
def test_every_python_module_the_readme_runs_answers_help(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower()


@pytest.mark.parametrize("target", sorted(set(re.findall(r"^make ([a-z-]+)", README, re.M))))
def test_every_make_target_the_readme_names_exists(target: str) -> None:
    result = subprocess.run(
        ["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
