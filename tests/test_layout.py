"""The limits that keep the code base readable: small modules, a pipeline map one hop deep, imports
that go one way, and a tier on every test."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, TIERS, imported_modules

pytestmark = pytest.mark.unit

MAX_LINES = 500
"""No module outside tests/ may be longer: past this, a module holds more than one concern."""
SOURCE_SUFFIXES = (".py", ".ts", ".mjs", ".sh")
DOTTED = re.compile(r"`((?:bots|processors|observers|transcripts|toolcalls|pipecat)(?:\.\w+)+)`")


def tracked_sources() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    names = listed.stdout.decode().split("\0")
    return [
        REPO / name
        for name in names
        if name.endswith(SOURCE_SUFFIXES) and not name.startswith("tests/") and "/dist/" not in name
    ]


def test_no_module_outside_the_tests_is_over_500_lines() -> None:
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in tracked_sources()}
    long = {str(path.relative_to(REPO)): n for path, n in sizes.items() if n > MAX_LINES}
    assert sizes and not long, f"modules over {MAX_LINES} lines: {long}"


def resolves(dotted: str) -> bool:
    """Whether `a.b.c.Name` names an importable module, or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        target: object = module
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_the_pipeline_docstring_names_a_real_module_for_every_stage() -> None:
    import bots.pipeline

    named = DOTTED.findall(bots.pipeline.__doc__ or "")
    assert named, "the docstring names no module"
    assert [n for n in named if not resolves(n)] == []
    processor_modules = {
        f"processors.{p.stem}"
        for p in (REPO / "processors").glob("*.py")
        if p.stem not in ("__init__", "frames")
    }
    stages = processor_modules | {"bots.gemini_live.service", "observers.transcript"}
    mentioned = {m for m in stages if any(n.startswith(m) for n in named)}
    assert mentioned == stages, f"stages the docstring does not name: {stages - mentioned}"


def test_the_transcripts_package_imports_nothing_from_pipecat_or_the_bots() -> None:
    files = sorted((REPO / "transcripts").rglob("*.py"))
    assert files, "no transcripts package"
    for path in files:
        imported = imported_modules(path)
        assert not any(m.split(".")[0] in ("pipecat", "bots") for m in imported), path


def pytest_with_our_hook(test_file: Path) -> subprocess.CompletedProcess[str]:
    """Pytest on one file outside the suite, with tests/conftest.py loaded as a plugin."""
    path = os.pathsep.join([str(REPO / "tests"), str(REPO)])
    plugins = ["-p", "conftest", "-p", "no:cacheprovider"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, str(test_file)],
        cwd=test_file.parent,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_test_without_a_tier_marker_is_refused_and_one_with_a_tier_runs(tmp_path: Path) -> None:
    untiered = tmp_path / "test_untiered.py"
    untiered.write_text("def test_unmarked() -> None:\n    pass\n")
    tiered = tmp_path / "test_tiered.py"
    tiered.write_text(
        "import pytest\n\npytestmark = pytest.mark.unit\n\n\ndef test_marked() -> None:\n    pass\n"
    )
    refused = pytest_with_our_hook(untiered)
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR, refused.stdout + refused.stderr
    assert (
        f"tests without a tier marker ({', '.join(TIERS)}): test_untiered.py::test_unmarked"
        in refused.stderr
    )
    ran = pytest_with_our_hook(tiered)
    assert ran.returncode == pytest.ExitCode.OK, ran.stdout + ran.stderr
    assert "1 passed" in ran.stdout
