"""The page keeps its conversation when its server goes away (issue 15, point 2), in Chromium.

One emulator outlives two bot servers that share a data folder and a port, as two replicas
behind one address do. The page connects to the first; the first gets SIGTERM and, draining,
tells the page to move; the page shows "reconnecting" (its status line says the conversation is
moving) and keeps trying with backoff while no server answers; the second server comes up on the
same port, and the page connects to it with the same conversation id, which resumes the same
Gemini session from the stored handle.
"""

from __future__ import annotations

import json
import signal
import ssl
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_harness import chromium, no_leftovers

from bots.emulator_process import EmulatorProcess, start_emulator
from testkit.bot_server import launch, stopped_at_exit
from testkit.browser.media import MicScript
from testkit.browser.page import open_page
from testkit.processes import free_port
from transcripts import TranscriptStore

__all__ = ["chromium", "no_leftovers"]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    process = start_emulator(tmp_path / "certs")
    try:
        yield process
    finally:
        process.stop()


def emulator_sessions(emulator: EmulatorProcess) -> list[dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(emulator.ca))
    with urllib.request.urlopen(f"{emulator.base_url}/emulator/sessions", context=context) as r:
        return sorted(json.load(r), key=lambda s: s["opened_at"])


def test_the_page_moves_its_conversation_to_the_server_that_comes_up_after_a_restart(
    chromium: Path, no_leftovers: None, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    port = free_port()
    env = {"EMULATOR_URL": emulator.base_url, "EMULATOR_CA": str(emulator.ca)}
    command = [sys.executable, "-m", "bots", "--host", "127.0.0.1", "--port", str(port)]

    def server(name: str) -> Any:
        return launch(command, tmp_path, port=port, name=name, env=env)

    page_url = f"http://127.0.0.1:{port}/client/?autoconnect=1"
    with stopped_at_exit(server("first")) as first:
        first.wait_until_serving()
        with open_page(page_url, MicScript.questions([]), tmp_path / "page") as page:
            page.wait_ready()
            conversation = page.snapshot()["agent"]["conversationId"]
            before, lines_before = len(page.probe.states), len(page.probe.banner)
            # A rolling restart of the only replica: SIGTERM, then a new process on the port.
            assert first.interrupt(signal.SIGTERM, timeout=60) == 0, first.tail()
            assert "asking 1 client(s) to move" in first.output(), first.tail()
            with stopped_at_exit(server("second")) as second:
                second.wait_until_serving()

                def moved(probe: Any) -> bool:
                    after = [state for _, state in probe.states[before:]]
                    return "reconnecting" in after and after[-1] == "ready"

                page.wait("the page to show 'reconnecting', then 'ready'", moved, 90)
                # The status line said so in words, not only with the state's colour.
                lines = [text for _, shown, text in page.probe.banner[lines_before:] if shown]
                assert any(line.startswith("Moving: This server is restarting") for line in lines)
                agent = page.snapshot()["agent"]
                assert agent["conversationId"] == conversation
                assert agent["reconnects"] >= 1
                assert not [e for e in agent["errors"] if "Could not connect" in e], agent
                page.hang_up()
    # Both servers wrote a transcript session of the one conversation.
    store = TranscriptStore(tmp_path / "data" / "transcripts")
    sessions = store.sessions_of_conversation(conversation)
    assert len(sessions) == 2, [s.session_id for s in store.sessions()]
    # The second server resumed the Gemini session the first one had (the stored handle).
    connections = emulator_sessions(emulator)
    assert len({c["conversation_id"] for c in connections}) == 1, connections
    assert connections[-1]["resumed_from"] is not None, connections[-1]
