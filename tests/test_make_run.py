"""The README's first command, `make run`, started as a user would and stopped with Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import REPO

from bots.web import DIST_DIR
from testkit.bot_server import launch, stopped_at_exit
from testkit.processes import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_make_run_serves_the_page_with_the_emulator_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    command = ["make", "--no-print-directory", "run", f"ARGS=--host 127.0.0.1 --port {port}"]
    make = launch(command, tmp_path, port=port, name="make-run", cwd=REPO)
    with stopped_at_exit(make, grace=0):
        make.wait_until_serving()
        page = httpx.get(f"{make.base_url}/client/", trust_env=False)
        assert page.status_code == 200, make.tail()
        assert page.content == (DIST_DIR / "index.html").read_bytes()
        text = make.output()
        assert "LOCAL GEMINI LIVE EMULATOR" in text and "not Gemini" in text
        assert any("emulator" in " ".join(p.argv) for p in make.children), make.children
        make.interrupt()  # what Ctrl-C in a terminal does
    assert "Traceback" not in make.output(), make.tail(100)
