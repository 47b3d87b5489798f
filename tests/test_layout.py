"""The limits that keep the code base readable: small modules, and a pipeline map one hop deep."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

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
