"""Record and replay: a session recorded to a cassette answers the bot again, offline, exactly.

Gemini is out of reach here, so the emulator stands in for it while recording, as the real
service would with `GOOGLE_API_KEY` set: the stage records at the socket, whatever is behind it.
Then the emulator is changed (a scenario that would answer every turn differently) and replays
the cassette instead: the bot must see the same tool calls and say the same things; a bot that
does something else must fail, naming the first difference.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pipecat.services.llm_service import FunctionCallParams

from bottest import LiveBot, ReplayMismatch
from cassettes import read_cassette
from testkit.fake_keys import fake_google_key

pytestmark = pytest.mark.emulator

KEY = fake_google_key()
"""A key of the real shape: it reaches the emulator in the request, and must not the cassette."""
CHANGED = {"rules": [{"when": ".", "do": [{"say": "I have changed my mind about everything."}]}]}
"""The emulator, changed: its own answer to every turn would now be this."""


def weather_tool(temperature_c: int) -> Any:
    async def get_weather(params: FunctionCallParams, city: str) -> None:
        """Get the current weather in a city.

        Args:
            city: The city, e.g. "Oslo".
        """
        await params.result_callback({"city": city, "temperature_c": temperature_c})

    return get_weather


QUESTIONS = ("What is 6 times 7?", "What is the weather in Oslo?")


async def converse(bot: LiveBot) -> None:
    for question in QUESTIONS:
        await bot.type(question)


def said(bot: LiveBot) -> list[str]:
    return [e.text for e in bot.conversation.events if e.kind == "reply"]


def calls(bot: LiveBot) -> list[tuple[str, dict[str, Any], Any]]:
    events = bot.conversation.events
    results = {e.call_id: e.result for e in events if e.kind == "tool_result"}
    return [(e.name, e.arguments, results.get(e.call_id)) for e in events if e.kind == "tool_call"]


async def record(live_bot: Any, folder: Path, **settings: Any) -> tuple[Path, LiveBot]:
    async with live_bot(
        settings={"record_dir": folder, "google_api_key": KEY, **settings},
        extra_tools=[weather_tool(7)],
    ) as bot:
        await converse(bot)
        recorded = bot
    (cassette,) = sorted(folder.iterdir())
    return cassette, recorded


async def test_a_recorded_session_replays_through_the_bot_with_the_same_calls_and_words(
    live_bot: Any, live_replay: Any, tmp_path: Path
) -> None:
    cassette, original = await record(live_bot, tmp_path / "cassettes")
    assert [name for name, _, _ in calls(original)] == ["calculate", "get_weather"]
    transcript = original.transcript_turns()

    changed = live_replay(cassette, "--scenario", str(write_json(tmp_path / "s.json", CHANGED)))
    async with live_bot(emulator=changed, extra_tools=[weather_tool(7)]) as bot:
        await converse(bot)
        replayed = bot

    assert calls(replayed) == calls(original)
    assert said(replayed) == said(original)
    assert "changed my mind" not in " ".join(said(replayed))
    assert replayed.transcript_turns() == transcript
    assert await changed.replay_problems() == []


async def test_a_tool_that_now_answers_differently_fails_the_replay_naming_the_difference(
    live_bot: Any, live_replay: Any, tmp_path: Path
) -> None:
    cassette, _ = await record(live_bot, tmp_path / "cassettes")
    replayer = live_replay(cassette)
    with pytest.raises(ReplayMismatch) as failed:
        async with live_bot(emulator=replayer, extra_tools=[weather_tool(12)]) as bot:
            await converse(bot)
    message = str(failed.value)
    assert "tool_response differs from the recording" in message
    assert '"temperature_c": 7' in message and '"temperature_c": 12' in message
    assert "calculate" in message  # the conversation so far is shown


async def test_asking_something_else_fails_the_replay_at_that_turn(
    live_bot: Any, live_replay: Any, tmp_path: Path
) -> None:
    cassette, _ = await record(live_bot, tmp_path / "cassettes")
    replayer = live_replay(cassette)
    with pytest.raises(ReplayMismatch, match="What is 6 times 8") as failed:
        async with live_bot(emulator=replayer, extra_tools=[weather_tool(7)]) as bot:
            await bot.type("What is 6 times 8?")
    assert '"What is 6 times 7?"' in str(failed.value)


async def test_a_cassette_holds_no_key_and_no_resumption_handle(
    live_bot: Any, tmp_path: Path
) -> None:
    cassette, bot = await record(live_bot, tmp_path / "cassettes")
    text = cassette.read_text(encoding="utf-8")
    issued = [h for s in await bot.emulator.sessions() for h in s.get("handles", [])]
    assert issued, "the emulator issued resumption handles during the session"
    assert KEY not in text
    leaked = [handle for handle in issued if handle in text]
    assert not leaked
    header = read_cassette(cassette).header
    assert header["audio"] == "hash"
    assert "handle-1" in text  # the handles are there, by a name of their own


async def test_with_audio_kept_a_replay_plays_the_recorded_audio(
    live_bot: Any, live_replay: Any, tmp_path: Path
) -> None:
    cassette, original = await record(live_bot, tmp_path / "cassettes", record_audio="keep")
    recorded_audio = original.transport.output().audio_bytes
    assert read_cassette(cassette).header["audio"] == "keep"
    replayer = live_replay(cassette)
    async with live_bot(emulator=replayer, extra_tools=[weather_tool(7)]) as bot:
        await converse(bot)
        assert bot.transport.output().audio_bytes == recorded_audio


async def test_a_folder_that_cannot_be_written_stops_the_recording_not_the_conversation(
    live_bot: Any, tmp_path: Path, warnings: list[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder would go")
    async with live_bot(settings={"record_dir": blocker / "cassettes"}) as bot:
        turn = await bot.type("What is 6 times 7?")
        turn.expect.reply(contains="42")
    assert any("recording stopped: cannot create" in w for w in warnings), warnings


def test_the_sdk_still_opens_its_socket_through_the_name_the_recorder_wraps() -> None:
    from google.genai import live

    assert callable(getattr(live, "ws_connect", None)), (
        "google.genai.live.ws_connect is gone: bots/gemini_live/recording.py records nothing"
    )


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("", "is empty"),
        ('{"format": "something-else"}\n', "not a cassette"),
        ('{"format": "gemini-live-cassette/1"}\n{"t": 0, "from": "moon", "message": {}}\n', ":2:"),
        (
            '{"format": "gemini-live-cassette/1"}\n{"t": -1, "from": "server", "message": {}}\n',
            ":2:",
        ),
        ('{"format": "gemini-live-cassette/1"}\nnot json\n', ":2: not JSON"),
    ],
)
def test_the_emulator_refuses_a_bad_cassette_at_start_naming_the_line(
    tmp_path: Path, content: str, error: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator",
            "--no-warm",
            "--replay",
            str(bad),
            "--cert-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert error in result.stderr


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.mark.speech
async def test_a_spoken_turn_replays_where_the_user_speaks_and_not_when_they_type(
    live_bot: Any, live_replay: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "cassettes"
    async with live_bot(settings={"record_dir": folder}) as bot:
        turn = await bot.say("What is twelve times seven?")
        turn.expect.tool_call("calculate")
        original = calls(bot)
    (cassette,) = sorted(folder.iterdir())

    async with live_bot(emulator=live_replay(cassette)) as bot:
        turn = await bot.say("What is twelve times seven?")
        turn.expect.heard()
        assert calls(bot) == original

    with pytest.raises(ReplayMismatch, match="the user spoke here in the recording"):
        async with live_bot(emulator=live_replay(cassette)) as bot:
            await bot.type("What is twelve times seven?")
