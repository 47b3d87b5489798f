"""End to end in a real browser: headless Chromium talks to the bots over WebRTC, offline.

Debian's Chromium, driven by Playwright, opens our page at `/client/?autoconnect=1` on
`python -m bots assistant` (and `vision`), which runs on the local emulator (no key). The fake
microphone plays a WAV scripted from the speech fixtures: questions with silences long enough for
the answers. Every request to another host is blocked. Measurements are taken in the page (see
`testkit.browser`): the bot's audio through a WebAudio analyser on the remote track, the fake
microphone through one on the local track, RTVI messages and `#state` as they change.

Conversations are module fixtures, run once and checked by several tests: `five_turns` (what time
is it in Tokyo, then four more questions: points 1, 2, 7), `barge_in` (points 3, 6), `reconnects`
(point 5) and `vision` (point 4), all on the default model, gemini-3.8-live; `on_3_1` asks the
main conversation's Tokyo and note questions on gemini-3.1-flash-live-preview (issue 12, point 4),
and `text_barge_in` barges in on a story gemini-3.1 wrote and Piper speaks (TEXT modality).
Each opens a fresh browser and a fresh bot session; the bot servers are shared per bot kind.
Issue 8's points are named in each test's docstring.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_harness import (
    SECURED_SECRET,
    assistant_3_1_bot,
    assistant_bot,
    assistant_text_bot,
    bot_servers,
    chromium,
    no_leftovers,
    secured_bot,
    vision_bot,
)

from bots.server.identity import mint
from testkit.bot_server import BotServer, EmulatorControl
from testkit.browser.conversation import (
    LATENCY_QUESTIONS,
    Conversation,
    converse,
    latency_script,
    summarize_latencies,
)
from testkit.browser.latency import markdown_table
from testkit.browser.media import MicScript, synthesize, write_solid_y4m
from testkit.browser.page import BASE_FLAGS, PageSession, Turn, open_page
from testkit.browser.probe import Probe, ToolRow
from testkit.processes import HarnessError
from transcripts import Transcript, load_session

# Fixtures, used through pytest's lookup in this module's namespace.
__all__ = [
    "assistant_3_1_bot",
    "assistant_bot",
    "assistant_text_bot",
    "bot_servers",
    "chromium",
    "no_leftovers",
    "secured_bot",
    "vision_bot",
]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")
BARGE_IN_TARGET_MS = 500.0
"""What barge-in aims for: measured and printed, not asserted (speed is measured)."""
MAX_FPS = 1.5
SPEECH_HANGOVER_S = 1.5
"""Frames may follow the end of a speech segment by this much: the bot's VAD and its hangover."""
SPEECH_LEAD_S = 0.5
"""...and precede the emulator's start of speech by this much: its VAD fires after ~150 ms."""
IN_THE_BACKGROUND = "running in the background"
"""How the page words a NON_BLOCKING call while it runs (bots/web/src/render.ts)."""


@pytest.fixture(scope="module", autouse=True)
def _leftover_check(no_leftovers: None, request: pytest.FixtureRequest) -> Iterator[None]:
    """Set up before, so torn down after, every server and browser of this module (point 8)."""
    began = time.monotonic()
    yield
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nbrowser tests: {time.monotonic() - began:.0f} s with bot start-ups")


# ---------------------------------------------------------------------------------- helpers


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """Print a measurement to the terminal even when pytest captures output (`make test`)."""
    with capsys.disabled():
        print(text)


def transcript_of(server: BotServer, conv: Conversation) -> Transcript:
    """The bot's transcript of the conversation's session, read from DATA_DIR/transcripts."""
    if conv.transcript_id is None:
        pytest.fail(
            f"the bot wrote no transcript under {server.transcripts} for this session "
            "(is observers/transcript.py wired into the bot's pipeline?)"
        )
    return load_session(server.transcripts, conv.transcript_id)


def page_turns(conv: Conversation) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = conv.snapshot["agent"]["transcript"]
    return turns


def bot_text_after(conv: Conversation, user_words: str) -> str:
    """What the page shows the bot saying after the first user turn containing `user_words`,
    up to the next user turn that does not contain them (the page may repeat a user turn)."""
    turns = page_turns(conv)
    asking = [i for i, t in enumerate(turns) if t["role"] == "user" and user_words in t["text"]]
    said = []
    for turn in turns[asking[0] + 1 :] if asking else []:
        if turn["role"] == "user" and user_words not in turn["text"]:
            break
        if turn["role"] == "bot":
            said.append(turn["text"])
    return " ".join(said)


def assert_offline(conv: Conversation) -> None:
    assert conv.blocked == [], f"the page asked other hosts for: {conv.blocked}"
    assert conv.requests, "no request went through the route handler"
    assert not conv.page_errors, conv.page_errors


def wait_until_said(session: PageSession, pattern: str, timeout: float = 30.0) -> None:
    """Hang up only once the page shows the bot saying `pattern` (a regular expression).

    A question counts as answered at its first bot audio; a later part of the answer (the words
    after a NON_BLOCKING tool's result, a reply after a split utterance) comes only after it, later
    still on a busy machine, so a test that asserts on those words waits for them here.
    """

    def said(_probe: Probe) -> bool:
        turns = session.snapshot()["agent"]["transcript"]
        return bool(re.search(pattern, " ".join(t["text"] for t in turns if t["role"] == "bot")))

    session.wait(f"the bot saying {pattern!r}", said, timeout)


def speaking_window(probe: Probe, after: float) -> tuple[float, float]:
    """Page times of the first bot-started-speaking after `after` and the stop that follows."""
    starts = probe.event_times("bot-started-speaking", after=after)
    assert starts, f"no bot-started-speaking after {after:.0f} ms: {probe.events[-20:]}"
    stops = probe.event_times("bot-stopped-speaking", after=starts[0])
    assert stops, f"no bot-stopped-speaking after {starts[0]:.0f} ms"
    return starts[0], stops[0]


# ---------------------------------------------------------------------------------- conversations


@pytest.fixture(scope="module")
def five_turns(assistant_bot: BotServer, tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    """What time is it in Tokyo, twelve times seven, hello, remember blue, weather in Paris."""
    return converse(assistant_bot, latency_script(5), tmp_path_factory.mktemp("five-turns"))


@pytest.fixture(scope="module")
def on_3_1(assistant_3_1_bot: BotServer, tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    """The main conversation's Tokyo and note questions on gemini-3.1, where every tool blocks."""
    tokyo, remember = LATENCY_QUESTIONS[0], LATENCY_QUESTIONS[3]
    return converse(
        assistant_3_1_bot, MicScript.questions([tokyo, remember]), tmp_path_factory.mktemp("3-1")
    )


@pytest.fixture(scope="module")
def barge_in(assistant_bot: BotServer, tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    """Twelve times seven (a tool call), a long story, and "Stop. Wait a moment." during it."""
    script = MicScript.questions(
        [
            ("multiply.wav", 10.0),
            ("long_story.wav", 9.0),  # the story is well under way (it lasts over 40 s)...
            ("stop.wav", 8.0),  # ...when "stop" comes
        ]
    )
    # An answer to "stop" comes within seconds; without the barge-in the story would go on.
    return converse(assistant_bot, script, tmp_path_factory.mktemp("barge-in"), turn_timeout=25)


@pytest.fixture(scope="module")
def text_barge_in(
    assistant_text_bot: BotServer, tmp_path_factory: pytest.TempPathFactory
) -> Conversation:
    """TEXT modality: a long story Gemini wrote at once and Piper speaks, and "Stop. Wait a
    moment." during it, when no `interrupted` can come from Gemini (its turn is complete)."""
    script = MicScript.questions([("long_story.wav", 9.0), ("stop.wav", 8.0)])
    return converse(
        assistant_text_bot, script, tmp_path_factory.mktemp("text-barge-in"), turn_timeout=25
    )


@pytest.fixture(scope="module")
def reconnects(assistant_bot: BotServer, tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    """Twelve times seven; goAway; hello; the socket dropped; remember that blue is my colour."""
    script = MicScript.questions(
        [
            ("multiply.wav", 9.0),  # answer (~2 s) and the switch of connections after goAway
            ("hello.wav", 10.0),  # answer (~2.5 s) and the reconnection after the drop
            ("remember_color.wav", 10.0),
        ]
    )
    control = EmulatorControl(assistant_bot)
    since = time.time()
    notes: dict[str, Any] = {}

    def inject(session: PageSession, index: int, _turn: Turn) -> None:
        live = control.open_session(since)
        if live is None:
            notes[f"fault {index}"] = "no open emulator session to inject into"
            return
        if index == 0:
            control.action(live["id"], "goaway", {"time_left_s": 5.0})
            notes["goaway_at"] = session.probe.now
            notes["goaway_session"] = live["id"]
            try:
                session.wait(
                    "the bot moves to a new connection after goAway",
                    lambda _p: (
                        (s := control.open_session(since)) is not None and s["id"] != live["id"]
                    ),
                    8.0,
                )
                notes["goaway_switched_ms"] = session.probe.now - notes["goaway_at"]
            except HarnessError as exc:
                notes["goaway_error"] = str(exc).splitlines()[0]
        elif index == 1:
            control.action(live["id"], "drop")
            dropped = notes["drop_at"] = session.probe.now
            notes["drop_session"] = live["id"]

            def back(probe: Probe) -> bool:
                after = [s for t, s in probe.states if t >= dropped]
                return "reconnecting" in after and after[-1] == "ready"

            try:
                session.wait("the page shows 'reconnecting', then 'ready'", back, 12.0)
            except HarnessError as exc:
                notes["drop_error"] = str(exc).splitlines()[0]
        elif index == 2:
            # On 3.8 the note is saved NON_BLOCKING: the first audio is the preamble, and the
            # colour is confirmed once the tool's result is in.
            with contextlib.suppress(HarnessError):
                wait_until_said(session, r"\bblue\b")

    try:
        conv = converse(assistant_bot, script, tmp_path_factory.mktemp("reconnects"), during=inject)
    finally:
        control.close()
    conv.extra.update(notes)
    return conv


@pytest.fixture(scope="module")
def vision(vision_bot: BotServer, tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    """The vision bot with a red fake camera: hello, then "describe what you see"."""
    workdir = tmp_path_factory.mktemp("vision")
    camera = write_solid_y4m(workdir / "red.y4m", (255, 0, 0), width=320, height=240)
    script = (
        MicScript.questions([("hello.wav", 10.0)])
        .say_pcm("describe.wav", synthesize("Please describe what you see on my camera."))
        .silence(10.0)
    )

    def camera_on(session: PageSession) -> None:
        session.page.wait_for_selector("#camera:not([hidden])", timeout=10_000)
        session.page.click("#camera")
        session.page.wait_for_selector("#camera[aria-pressed='true']", timeout=10_000)

    def described(session: PageSession, index: int, _turn: Turn) -> None:
        if index == len(script.clips) - 1:
            with contextlib.suppress(HarnessError):
                wait_until_said(session, r"320 by 240")

    return converse(
        vision_bot, script, workdir, camera=camera, after_ready=camera_on, during=described
    )


# ---------------------------------------------------------------------------------- 1, 2


def test_chromium_runs_with_the_fake_microphone_and_the_page_needs_no_other_host(
    five_turns: Conversation,
) -> None:
    """Points 1 and 2: the issue's flags, sound on, a fresh profile, every foreign request blocked
    (none was made), and the conversation worked."""
    argv = five_turns.chromium_argv
    assert argv, "the Chromium browser process was not found in /proc"
    for flag in BASE_FLAGS:
        assert flag in argv, f"{flag} missing from {argv}"
    assert any(a.startswith("--use-file-for-fake-audio-capture=") for a in argv)
    assert any(a.startswith("--user-data-dir=") for a in argv)
    assert "--mute-audio" not in argv, "Playwright muted the page: launch with headless=False"
    assert_offline(five_turns)
    states = five_turns.probe.state_sequence()
    assert states[-2:] == ["ready", "disconnected"] and "error" not in states, states
    assert all(t.answer is not None for t in five_turns.turns), five_turns.turns
    ready_at = next(t for t, s in five_turns.probe.states if s == "ready")
    assert ready_at < five_turns.turns[0].spoke.start, "the first question began before 'ready'"


def assert_draws_the_tokyo_question_the_time_tool_and_the_answer(conv: Conversation) -> None:
    snap = conv.snapshot
    assert_offline(conv)
    assert any("Tokyo" in t for t in snap["userTurns"]), snap["userTurns"]
    assert any(CLOCK.search(t["text"]) for t in snap["botTurns"]), snap["botTurns"]
    tokyo_tools = [t for t in snap["tools"] if "get_current_time" in t["text"]]
    assert tokyo_tools, snap["tools"]
    assert "Tokyo" in tokyo_tools[0]["text"] and tokyo_tools[0]["status"] == "done", tokyo_tools
    for event in ("user-transcription", "llm-function-call-stopped", "bot-started-speaking"):
        assert event in snap["agent"]["events"], snap["agent"]["events"]
    assert not snap["agent"]["errors"], snap["agent"]["errors"]
    assert CLOCK.search(bot_text_after(conv, "Tokyo"))
    tools = snap["agent"]["tools"]
    assert all(t["background"] is False for t in tools if t["name"] == "get_current_time"), tools


def test_the_page_draws_the_tokyo_question_the_time_tool_and_the_answer(
    five_turns: Conversation,
) -> None:
    """Point 2: the RTVI messages reached the page and were drawn (on gemini-3.8-live)."""
    assert_draws_the_tokyo_question_the_time_tool_and_the_answer(five_turns)


def test_on_3_1_too_the_page_draws_the_tokyo_question_the_time_tool_and_the_answer(
    on_3_1: Conversation,
) -> None:
    """Issue 12, point 4: the browser suite's main conversation on gemini-3.1-flash-live-preview."""
    assert_draws_the_tokyo_question_the_time_tool_and_the_answer(on_3_1)


def turn_asking(conv: Conversation, clip: str) -> Turn:
    """The conversation's turn that asked the question in the fixture `clip`."""
    turn = next((t for t in conv.turns if t.clip.name == clip), None)
    assert turn is not None, f"no turn asked {clip}: {conv.turns}"
    return turn


def note_history(conv: Conversation) -> list[tuple[float, ToolRow]]:
    """Each state the page drew the `remember_note` row in, and the row's final state."""
    history = conv.probe.tool_history("remember_note")
    assert history, f"the page never drew a remember_note row: {conv.probe.tools}"
    tools = conv.snapshot["agent"]["tools"]
    notes = [t for t in tools if t["name"] == "remember_note"]
    assert notes and notes[0]["status"] == "done", tools
    rows = [t for t in conv.snapshot["tools"] if "remember_note" in t["text"]]
    assert rows and rows[0]["status"] == "done", rows
    return history


def speaking_since(probe: Probe, t: float) -> float | None:
    """When the bot-started-speaking that the page had at `t` arrived, if no bot-stopped-speaking
    followed it by then; None when the page did not take the bot to be speaking at `t`."""
    kinds = ("bot-started-speaking", "bot-stopped-speaking")
    said = [(at, kind) for at, kind in probe.events if at <= t and kind in kinds]
    return said[-1][0] if said and said[-1][1] == kinds[0] else None


def drawn(history: list[tuple[float, ToolRow]]) -> list[tuple[int, str, bool]]:
    """A row's history for a failure message: (page ms, shown status, background)."""
    return [(round(t), row.shown, row.background) for t, row in history]


def test_saving_a_note_on_3_8_runs_in_the_background_and_then_shows_its_outcome(
    five_turns: Conversation,
) -> None:
    """Issue 12, point 3: on gemini-3.8-live (the default) `remember_note` is NON_BLOCKING: the
    page draws it "running in the background" while the bot goes on talking (its preamble is
    playing in the page), then draws how it ended; the tools the answer needs (the time) are not
    background calls. The row's states are recorded as the page drew them (a MutationObserver)."""
    history = note_history(five_turns)
    probe = five_turns.probe
    question = turn_asking(five_turns, "remember_color.wav")
    running = [t for t, row in history if row.shown == IN_THE_BACKGROUND and row.background]
    assert running, f"never drawn {IN_THE_BACKGROUND!r}: {drawn(history)}"
    shown = running[0]
    done = [t for t, row in history if t > shown and row.status == "done"]
    assert done, f"not drawn as done after running in the background: {drawn(history)}"
    assert IN_THE_BACKGROUND not in history[-1][1].shown, drawn(history)
    # The bot went on talking: its answer's audio began in the page before the running call was
    # drawn and went on after it, and the page had been told the bot was speaking.
    answer = question.answer
    assert answer is not None and question.spoke.end < answer.start < shown < answer.end, (
        f"the answer's audio {answer} does not span the running call at {shown:.0f} ms "
        f"(question ended at {question.spoke.end:.0f} ms): {drawn(history)}"
    )
    since = speaking_since(probe, shown)
    assert since is not None and since > question.spoke.end, (
        f"the page did not take the bot to be speaking at {shown:.0f} ms: "
        f"{[(round(t), k) for t, k in probe.events if 'speaking' in k]}"
    )
    tools = five_turns.snapshot["agent"]["tools"]
    assert next(t for t in tools if t["name"] == "remember_note")["background"] is True, tools


def test_saving_a_note_on_3_1_blocks_the_answer_and_is_never_shown_in_the_background(
    on_3_1: Conversation,
) -> None:
    """Issue 12, point 3 on gemini-3.1-flash-live-preview: every tool blocks, so the same
    `remember_note` is never drawn as a background call, and the bot says nothing until it is
    done: the answer's first audio comes after the page drew the call's outcome."""
    history = note_history(on_3_1)
    question = turn_asking(on_3_1, "remember_color.wav")
    assert all(not row.background for _, row in history), drawn(history)
    assert all(IN_THE_BACKGROUND not in row.shown for _, row in history), drawn(history)
    tools = on_3_1.snapshot["agent"]["tools"]
    assert all(t["background"] is False for t in tools), tools
    done = next((t for t, row in history if row.status == "done"), None)
    assert done is not None, drawn(history)
    answer = question.answer
    assert answer is not None and done < answer.start, (
        f"the answer's audio {answer} began before the call was drawn done: {drawn(history)}"
    )
    assert re.search(r"\bblue\b", bot_text_after(on_3_1, "remember")), page_turns(on_3_1)


def test_the_page_plays_the_bots_answer_for_as_long_as_the_bot_speaks(
    five_turns: Conversation, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 2: the bot's audio measured in the page, not trusted from a flag."""
    turn = five_turns.turns[0]
    assert turn.answer is not None, "no bot audio in the page after the Tokyo question"
    probe = five_turns.probe
    started, stopped = speaking_window(probe, after=turn.spoke.end)
    loud = probe.loud_ms("bot", started, stopped + 500)
    words = len(bot_text_after(five_turns, "Tokyo").split())
    report(
        capsys,
        f"\nTokyo answer: bot-started/stopped-speaking {stopped - started:.0f} ms apart; audio in "
        f"the page {turn.answer.start - started:+.0f} / {turn.answer.end - stopped:+.0f} ms from "
        f"them, {loud:.0f} ms above silence for {words} words",
    )
    # The audio starts and ends with the bot's own speaking messages (network and jitter buffer
    # apart), and is sound for most of that time: the pauses between sentences are short.
    assert abs(turn.answer.start - started) < 700, (turn.answer, started)
    assert abs(turn.answer.end - stopped) < 1000, (turn.answer, stopped)
    assert loud > 0.6 * (stopped - started), f"{loud:.0f} ms loud in {stopped - started:.0f} ms"
    assert 100 < loud / max(words, 1) < 1200, f"{loud:.0f} ms of audio for {words} words"


def test_the_transcript_on_disk_has_the_tokyo_question_the_time_tool_call_and_a_time(
    assistant_bot: BotServer, five_turns: Conversation
) -> None:
    """Point 2: DATA_DIR/transcripts/<session>.jsonl, as the bot wrote it."""
    transcript = transcript_of(assistant_bot, five_turns)
    user = next((t for t in transcript.user_turns if "Tokyo" in t.text), None)
    assert user is not None and "time" in user.text.lower(), transcript.user_turns
    calls = [c for c in transcript.tool_calls if c.get("name") == "get_current_time"]
    assert calls, transcript.tool_calls
    assert any("Tokyo" in str(v) for v in (calls[0].get("arguments") or {}).values()), calls[0]
    assert calls[0].get("outcome") == "ok", calls[0]
    answer = [t for t in transcript.bot_turns if (t.reply_to or 0) >= user.turn]
    assert any(CLOCK.search(t.text) for t in answer or transcript.bot_turns), transcript.bot_turns


# ---------------------------------------------------------------------------------- 3


def barge_in_stop_ms(conv: Conversation, stop: int) -> tuple[float, float]:
    """(barge-in speech onset, end of the bot's audio) in page milliseconds.

    The onset is the first loud microphone sample of "Stop." (question `stop`); the bot's audio
    ends between its last loud sample before 800 ms of silence and the next (quiet) sample.
    Sentences of the story are ~300 ms apart, and the reply to "stop" comes only after the user
    has finished speaking.
    """
    probe = conv.probe
    onset = conv.turns[stop].spoke.start
    runs = probe.runs("bot", merge_ms=800, start=onset - 2000)
    speaking = [r for r in runs if r.end >= onset - 800]
    assert speaking, f"the bot was not speaking when the user barged in: {runs}"
    last = speaking[0].end
    after = next((t for t, _, _ in probe.samples if t > last), last)
    return onset, (last + after) / 2


def check_barge_in(
    conv: Conversation, stop: int, what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The story (question `stop - 1`) stops after "Stop." began and before it ended, and the
    page marks it interrupted; the delay is printed against the target, not asserted."""
    assert_offline(conv)
    story = conv.turns[stop - 1]
    assert story.answer is not None and story.answer.loud_ms > 2000, "no story to barge in on"
    onset, end = barge_in_stop_ms(conv, stop)
    delay = end - onset
    probe = conv.probe
    loud_before = probe.loud_ms("bot", onset - 1000, onset)
    told = probe.event_times("bot-interrupted", after=onset - 200)
    breakdown = (
        f"; bot-interrupted reached the page at +{told[0] - onset:.0f} ms, the audio stopped "
        f"{end - told[0]:+.0f} ms from it"
        if told
        else "; no bot-interrupted message"
    )
    heard = [
        seg["start"]
        for sess in conv.emulator_sessions
        for seg in sess.get("speech_segments", [])
        if -0.5 < seg["start"] - probe.epoch(onset) < 3.0
    ]
    if heard:
        breakdown += (
            f"; the emulator's VAD started at +{(heard[0] - probe.epoch(onset)) * 1000:.0f} ms"
        )
    verdict = "within" if delay <= BARGE_IN_TARGET_MS else "over"
    report(
        capsys,
        f"\n{what}: the bot's audio in the page stopped {delay:.0f} ms after the barge-in speech "
        f"began ({verdict} the {BARGE_IN_TARGET_MS:.0f} ms target; mic up at {onset:.0f} ms, "
        f"bot audio down at {end:.0f} ms{breakdown}; bot loud for {loud_before:.0f} of the "
        f"1000 ms before)",
    )
    assert loud_before > 300, "the bot was not speaking when the barge-in began"
    still_speaking = conv.turns[stop].spoke.end
    assert onset < end < still_speaking, (
        f"bot audio went on {delay:.0f} ms after the barge-in, past the end of the user's speech "
        f"({still_speaking - onset:.0f} ms after its start)"
    )
    assert any(t["interrupted"] for t in conv.snapshot["botTurns"]), conv.snapshot
    assert "bot-interrupted" in conv.snapshot["agent"]["events"]


def test_barge_in_stops_the_bots_audio_in_the_page_while_the_user_is_still_speaking(
    barge_in: Conversation, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 3: the fake microphone speaks over the story; the page's bot audio stops.

    The delay is measured and printed against the 500 ms target, not asserted (a busy machine
    makes it longer); what is asserted is the behaviour: the story stops after the barge-in began
    and before the user has finished saying "stop" (1.7 s of speech), and it is marked interrupted.
    """
    check_barge_in(barge_in, 2, "barge-in", capsys)


def test_in_text_modality_barge_in_stops_the_piper_voice_in_the_page_while_the_user_speaks(
    text_barge_in: Conversation, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17, point 2: as point 3, with Gemini writing and Piper speaking. Gemini's turn is
    complete before the voice has said a sentence, so it is the bot's own VAD that stops it."""
    check_barge_in(text_barge_in, 1, "TEXT-modality barge-in", capsys)
    written = [
        turn
        for sess in text_barge_in.emulator_sessions
        for turn in sess.get("spoken", [])
        if "dragon" in turn.get("text", "").lower()
    ]
    assert written, text_barge_in.emulator_sessions
    assert not any(t.get("interrupted") for t in written), "Gemini interrupted the story itself"


def test_the_transcript_on_disk_marks_the_interrupted_story(
    assistant_bot: BotServer, barge_in: Conversation
) -> None:
    """Point 3: the bot turn the user cut off is marked interrupted in the transcript."""
    transcript = transcript_of(assistant_bot, barge_in)
    story = [t for t in transcript.bot_turns if "dragon" in t.text.lower()]
    assert story, transcript.bot_turns
    assert any(t.interrupted for t in story), story
    assert not transcript.bot_turns[0].interrupted, "the answer before the story was not cut off"


def test_in_text_modality_the_transcript_on_disk_marks_the_story_interrupted_and_answers_stop(
    assistant_text_bot: BotServer, text_barge_in: Conversation
) -> None:
    """Issue 17, point 2: the interrupted story, then Gemini's answer to "stop", not cut off."""
    transcript = transcript_of(assistant_text_bot, text_barge_in)
    story = [t for t in transcript.bot_turns if "dragon" in t.text.lower()]
    assert story and all(t.interrupted for t in story), transcript.bot_turns
    after = [t for t in transcript.bot_turns if t.turn > story[-1].turn]
    assert after and not after[0].interrupted, transcript.bot_turns


# ---------------------------------------------------------------------------------- 4


def test_the_vision_bot_sends_camera_frames_about_once_a_second_only_while_the_user_speaks(
    vision: Conversation, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 4: the emulator's session record shows JPEG frames, ~1 fps, only during speech."""
    assert_offline(vision)
    sessions = [s for s in vision.emulator_sessions if s.get("frames", {}).get("video")]
    assert sessions, f"no emulator session received video: {vision.emulator_sessions}"
    frames = sorted((f for s in sessions for f in s["video_frames"]), key=lambda f: f["t"])
    segments = [seg for s in sessions for seg in s["speech_segments"] if seg.get("end")]
    assert len(segments) >= 2, f"expected two spoken turns, got {segments}"
    assert all(f["width"] == 320 and f["height"] == 240 and f["bytes"] > 0 for f in frames), frames

    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(frames)]
    in_speech = [
        f
        for f in frames
        if any(
            s["start"] - SPEECH_LEAD_S <= f["t"] <= s["end"] + SPEECH_HANGOVER_S for s in segments
        )
    ]
    report(
        capsys,
        f"\nvision: {len(frames)} frames ({sum(f['during_speech'] for f in frames)} while the "
        f"emulator heard speech) in {len(segments)} speech segments lasting "
        f"{[round(s['end'] - s['start'], 1) for s in segments]} s; frames at "
        f"{[_relative(f['t'], segments) for f in frames]}; gaps between frames "
        f"{[round(g, 2) for g in gaps]} s; answer {bot_text_after(vision, 'see')!r}",
    )
    assert gaps and min(gaps) >= 1 / MAX_FPS, f"frames closer than {1 / MAX_FPS:.2f} s: {gaps}"
    for seg in segments:
        during = [f for f in frames if seg["start"] - SPEECH_LEAD_S <= f["t"] <= seg["end"]]
        assert during, f"no frame while the user spoke in {seg}: {frames}"
    assert len(in_speech) == len(frames), f"frames outside speech: {frames} vs {segments}"
    said = " ".join(t["text"] for t in page_turns(vision) if t["role"] == "bot")
    assert "320 by 240" in said and re.search(r"\bred\b", said), said


def _relative(t: float, segments: list[dict[str, Any]]) -> str:
    """A frame's time as seen from the nearest speech segment: "seg 1 +0.68 s"."""
    i, seg = min(enumerate(segments, 1), key=lambda p: abs(t - (p[1]["start"] + p[1]["end"]) / 2))
    return f"seg {i} +{t - seg['start']:.2f} s (ends +{seg['end'] - seg['start']:.2f})"


# ---------------------------------------------------------------------------------- 5


def test_a_goaway_and_a_drop_show_reconnecting_briefly_and_the_next_questions_are_answered(
    reconnects: Conversation, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 5: faults injected through the emulator's control API with the browser connected.

    goAway: the bot moves to a new connection at the next turn boundary (seamless, no banner
    needed); the drop: the page shows "reconnecting" until the bot is back. Each time the next
    question is answered, on a resumed session.
    """
    notes = reconnects.extra
    report(capsys, f"\nreconnects: {notes}; states {reconnects.probe.state_sequence()}")
    assert "goaway_at" in notes and "drop_at" in notes, notes
    states = [(t, s) for t, s in reconnects.probe.states if t >= notes["drop_at"]]
    shown = [t for t, s in states if s == "reconnecting"]
    assert shown, f"the page never showed 'reconnecting' after the drop: {states}"
    ready = [t for t, s in states if s == "ready" and t > shown[0]]
    assert ready, f"the page did not come back to 'ready': {states}"
    report(capsys, f"'reconnecting' shown for {ready[0] - shown[0]:.0f} ms after the drop")
    assert ready[0] - shown[0] < 5000, "the reconnecting state was not short"
    banner = [text for _, visible, text in reconnects.probe.banner if visible]
    assert any("reconnect" in text.lower() for text in banner), reconnects.probe.banner
    assert "goaway_error" not in notes, notes

    after_goaway, after_drop = reconnects.turns[1], reconnects.turns[2]
    assert after_goaway.answer is not None and after_drop.answer is not None, reconnects.turns
    # Each of these words is said only in the answer to the question after that fault.
    said = " ".join(t["text"] for t in page_turns(reconnects) if t["role"] == "bot")
    assert "hear you" in said and "blue" in said, said
    assert not reconnects.snapshot["agent"]["errors"], reconnects.snapshot["agent"]["errors"]
    resumed = [s for s in reconnects.emulator_sessions if s.get("resumed_from")]
    assert len(resumed) >= 2, f"goAway and drop should each resume: {reconnects.emulator_sessions}"


# ---------------------------------------------------------------------------------- 6


def test_the_transcripts_page_lists_sessions_and_draws_the_barge_in_session_as_a_timeline(
    assistant_bot: BotServer,
    five_turns: Conversation,
    barge_in: Conversation,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Point 6: /transcripts on the bot's own server, checked in Chromium, with a screenshot.

    The screenshot goes to $BROWSER_TEST_ARTIFACTS when set (e.g. a CI artifact folder), else
    to the test's temporary folder; its path is printed.
    """
    transcript = transcript_of(assistant_bot, barge_in)
    session_id = transcript.session_id
    workdir = tmp_path_factory.mktemp("transcripts-page")
    artifacts = Path(os.environ.get("BROWSER_TEST_ARTIFACTS") or workdir)
    artifacts.mkdir(parents=True, exist_ok=True)
    with open_page(f"{assistant_bot.base_url}/transcripts", None, workdir) as s:
        page = s.page
        listed = page.eval_on_selector_all(
            "a[href^='/transcripts/']", "els => els.map(e => e.textContent)"
        )
        assert session_id in listed, listed
        if five_turns.transcript_id is not None:
            assert five_turns.transcript_id in listed, listed
        page.click(f"a[href='/transcripts/{session_id}']")
        page.wait_for_selector("#timeline")
        count = lambda sel: page.locator(sel).count()  # noqa: E731
        users, bots = count(".ev.user"), count(".ev.bot")
        tools = page.locator(".ev.tool").all_inner_texts()
        bars = page.eval_on_selector_all(
            ".bar[data-latency-ms]",
            "els => els.map(e => [Number(e.dataset.latencyMs), e.getBoundingClientRect().width])",
        )
        cut = page.locator(".ev.bot .cut").all_inner_texts()
        shot = artifacts / f"transcript-{session_id}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert s.blocked == [], s.blocked
    report(capsys, f"\ntranscript page screenshot: {shot}")
    report(capsys, f"timeline: {users} user, {bots} bot, tools {tools}, cut {cut}, bars {bars}")
    assert users == len(transcript.user_turns) >= 3, (users, transcript.user_turns)
    assert bots == len(transcript.bot_turns) >= 2, (bots, transcript.bot_turns)
    assert any("calculate" in t and "ok" in t for t in tools), tools
    assert cut, "the interrupted story is not marked on the timeline"
    with_latency = [t for t in transcript.bot_turns if t.latency_ms is not None]
    assert len(bars) == len(with_latency) >= 2, (bars, with_latency)
    assert all(width > 0 for _, width in bars), bars
    assert shot.stat().st_size > 10_000


# ---------------------------------------------------------------------------------- 7


def test_latency_from_the_end_of_speech_to_the_first_bot_audio_over_5_turns(
    assistant_bot: BotServer, five_turns: Conversation, capsys: pytest.CaptureFixture[str]
) -> None:
    """Point 7: measured in the page; printed, not asserted (the target is < 700 ms median).

    The table also splits each turn at the bot, from the timestamps in its transcript.
    """
    latencies = five_turns.latencies_ms
    table = markdown_table(
        five_turns,
        title="Browser latency (emulator latency control 0)",
        transcripts=assistant_bot.transcripts,
    )
    report(capsys, "\n" + table)
    assert len(latencies) == 5, five_turns.turns
    assert all(0 < ms < 30_000 for ms in latencies), latencies
    median, worst = summarize_latencies(latencies)
    report(
        capsys,
        f"latency over 5 turns: median {median:.0f} ms, worst {worst:.0f} ms (target < 700 ms)",
    )


# ---------------------------------------------------------------------------------- tokens, busy


def test_the_page_sends_the_token_from_its_link_and_shows_busy_when_the_server_is_full(
    secured_bot: BotServer, tmp_path: Path
) -> None:
    """Issue 13, points 2 and 4: `#token=` in the link is sent as a bearer header (and taken
    out of the address bar); without it the page says a token is needed; a second page while the
    one allowed conversation runs says the assistant is busy, which is not an error."""
    page = f"{secured_bot.base_url}/client/?autoconnect=1"
    quiet = MicScript.questions([])
    with open_page(page, quiet, tmp_path / "no-token") as anonymous:
        anonymous.wait("the page shows an error", lambda p: "error" in p.state_sequence(), 30)
        assert any("token is required" in e for e in anonymous.snapshot()["agent"]["errors"])
    token = mint(SECURED_SECRET, "ana", 10)
    with open_page(f"{page}#token={token}", quiet, tmp_path / "first") as first:
        first.wait_ready()
        assert token not in first.page.url, "the token stays out of the address bar"
        # A second tab of the same browser (one Playwright per test process).
        second = first.context.new_page()
        try:
            second.goto(f"{page}#token={token}")
            second.wait_for_selector("#state[data-state='busy']", timeout=30_000)
            banner = second.text_content("#banner") or ""
            assert "busy" in banner.lower() and second.is_visible("#banner"), banner
            assert not second.is_visible("#error")
        finally:
            second.close()
        first.hang_up()
