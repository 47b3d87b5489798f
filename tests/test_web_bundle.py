"""The page the Python package ships is exactly what its sources build to.

A user runs the bot without Node.js, so the built bundle is committed; this test rebuilds it from
`bots/web/src` with the locked npm packages and fails if the committed `dist/` differs, and
type-checks the sources. It needs Node.js and the npm registry: under CI=true it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

WEB = REPO / "bots" / "web"
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("npm is required under CI=true to check the page bundle")
        pytest.skip("npm is not installed: cannot rebuild the page to compare it")
    return found


@pytest.fixture(scope="module")
def web_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page sources, lock file and committed dist/ in a scratch folder, after npm ci."""
    target = tmp_path_factory.mktemp("web") / "web"
    shutil.copytree(WEB, target, ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    result = subprocess.run(
        [npm(), "ci", "--no-audit", "--no-fund"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert result.returncode == 0, (
        f"npm ci failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    return target


def test_the_committed_bundle_is_what_the_sources_build_to(web_copy: Path) -> None:
    result = subprocess.run(
        [npm(), "run", "check"], cwd=web_copy, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        "bots/web/dist is stale: run `make web` and commit it\n" + result.stdout + result.stderr
    )


def test_the_page_sources_type_check(web_copy: Path) -> None:
    result = subprocess.run(
        [npm(), "run", "typecheck"], cwd=web_copy, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_stale_bundle_is_detected(web_copy: Path) -> None:
    app = web_copy / "dist" / "app.js"
    original = app.read_bytes()
    try:
        app.write_bytes(original + b"\n// edited by hand\n")
        result = subprocess.run(
            [npm(), "run", "check"], cwd=web_copy, capture_output=True, text=True, timeout=120
        )
        assert result.returncode != 0
    finally:
        app.write_bytes(original)
