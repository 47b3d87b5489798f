"""The README's first command, `make run`, started as a user would and stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import REPO
from test_run_command import START_TIMEOUT, STOP_TIMEOUT, clean_env, descendants, free_port

from bots.web import DIST_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_make_run_serves_the_page_with_the_emulator_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"ARGS=--host 127.0.0.1 --port {port}"],
            cwd=REPO,
            env=clean_env(DATA_DIR=str(tmp_path / "data")),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    seen = []
    try:
        page = None
        with httpx.Client(timeout=2, trust_env=False) as http:
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and make.poll() is None:
                try:
                    page = http.get(f"http://127.0.0.1:{port}/client/")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)  # polling interval
        text = log.read_text(errors="replace")
        assert page is not None and page.status_code == 200, text[-3000:]
        assert page.content == (DIST_DIR / "index.html").read_bytes()
        assert "LOCAL GEMINI LIVE EMULATOR" in text and "not Gemini" in text
        seen = descendants(make.pid)
        assert any("emulator" in " ".join(p.argv) for p in seen), seen
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        make.wait(STOP_TIMEOUT)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(10)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    leftover = [p for p in seen if p.alive()]
    assert not leftover, f"make run left processes behind: {leftover}"
