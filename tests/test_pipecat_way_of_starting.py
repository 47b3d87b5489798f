"""End to end: a bot started Pipecat's way (`python -m bots.assistant -t webrtc`), as a user would.

Each test starts the module in its own process group, on a free 127.0.0.1 port, in a temporary
working folder with `DATA_DIR` in it and none of the bot's settings (so no `GOOGLE_API_KEY`)
inherited (`testkit.bot_server.launch`); only that process group, and the processes it was seen
to start, are ever signalled.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bots.web import DIST_DIR
from testkit.bot_server import EmulatorControl, clean_env, launch, stopped_at_exit
from testkit.processes import free_port
from testkit.waiting import until
from testkit.webrtc.client import WebRTCClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

GOOGLE_HOST = "generativelanguage.googleapis.com"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| [A-Z]+ +\| ")
"""A loguru line (Pipecat logs its version when imported), not a line the command printed."""
URL = re.compile(r"https?://[^\s\"'<>]+")


def printed(output: str) -> list[str]:
    """The lines the command printed itself, without the log lines around them."""
    return [line for line in output.splitlines() if not LOG_LINE.match(line)]


@pytest.mark.parametrize(
    ("module", "flags"),
    [("bots.assistant", ["-t", "webrtc"]), ("bots.vision", [])],
    ids=["assistant -t webrtc", "vision"],
)
async def test_with_no_key_it_starts_the_emulator_serves_our_page_and_the_bot_talks_to_it(
    tmp_path: Path, module: str, flags: list[str]
) -> None:
    port = free_port()
    command = [sys.executable, "-m", module, *flags, "--host", "127.0.0.1", "--port", str(port)]
    server = launch(command, tmp_path, port=port, name=module)
    with stopped_at_exit(server, grace=0):
        server.wait_until_serving()
        output = server.output()
        assert "LOCAL GEMINI LIVE EMULATOR" in output and "no GOOGLE_API_KEY set" in output
        assert any(p.argv[1:3] == ("-m", "emulator") for p in server.children), server.children
        assert "Bot ready!" not in output and "→ Open:" not in output, "Pipecat's runner ran"

        # Every address the command printed for a browser leads to our own page.
        opens = [line for line in printed(output) if "open" in line.lower()]
        assert opens == [f"Open {server.base_url}/client/ in a browser."], printed(output)
        shown = [url for line in opens for url in URL.findall(line)]
        async with httpx.AsyncClient(trust_env=False, timeout=10, follow_redirects=True) as http:
            for url in [*shown, f"{server.base_url}/"]:
                page = await http.get(url)
                assert page.status_code == 200, url
                assert page.content == (DIST_DIR / "index.html").read_bytes(), url
            assert (await http.get(f"{server.base_url}/healthz")).json() == {"ok": True}
            assert (await http.get(f"{server.base_url}/readyz")).status_code == 200

        # A session: the bot's Gemini Live socket goes to the emulator this command started.
        since = time.time()
        with contextlib.closing(EmulatorControl(server)) as control:
            async with WebRTCClient(server.base_url) as client:
                await client.connect()
                session = await until(
                    lambda: control.open_session(since), "the bot's socket on the emulator"
                )
                assert session["model"] == "models/gemini-3.8-live", session
        assert "via the local emulator" in server.output(), server.tail()
        assert server.interrupt() == 0, server.tail()
    output = server.output()
    assert GOOGLE_HOST not in output and "Traceback" not in output, server.tail(100)


@pytest.mark.parametrize(
    ("module", "argv", "run_command"),
    [
        ("bots.assistant", ["-t", "livekit"], "`make run`"),
        ("bots.vision", ["-t", "websocket", "--port", "1"], "`make run ARGS=vision`"),
    ],
)
def test_an_unsupported_transport_exits_at_once_with_one_line_naming_make_run(
    tmp_path: Path, module: str, argv: list[str], run_command: str
) -> None:
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=tmp_path,
        env=clean_env(DATA_DIR=str(data_dir)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = printed(result.stderr)
    assert len(lines) == 1, result.stderr
    assert f"not -t {argv[1]}" in lines[0] and lines[0].endswith(run_command), lines
    assert not (data_dir / "emulator-certs").exists(), "an emulator was started"


def test_dash_t_daily_does_what_python_m_bots_does_for_daily(tmp_path: Path) -> None:
    """Here with no `DAILY_API_KEY`: both refuse, with the same line saying what to set."""
    results = {}
    for module in ("bots.assistant", "bots"):
        workdir = tmp_path / module
        workdir.mkdir()
        results[module] = subprocess.run(
            [sys.executable, "-m", module, "-t", "daily", "--host", "127.0.0.1", "--port", "1"],
            cwd=workdir,
            env=clean_env(DATA_DIR=str(workdir / "data")),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
    ours, theirs = results["bots.assistant"], results["bots"]
    assert ours.returncode == theirs.returncode == 2, (ours, theirs)
    assert printed(ours.stderr) == printed(theirs.stderr), (ours.stderr, theirs.stderr)
    assert printed(ours.stderr)[-1].startswith("DAILY_API_KEY is not set: -t daily needs")
