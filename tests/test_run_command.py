"""End to end: `python -m bots` started as a user would, talked to over WebRTC, stopped with Ctrl-C.

Each test starts real processes on 127.0.0.1 and free ports, in a temporary working folder with
`DATA_DIR` in it and none of the bot's settings inherited from the environment. The run command
gets its own process group (as a shell job would) and its output goes to a log file. Only what a
test started is ever signalled: the run command's process group, and (should the run command leak
it) the emulator child it was seen to start, by PID. Waits poll a condition until a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from conftest import AUDIO_DIR

from bots import lifecycle
from bots.emulator_process import EmulatorProcess, start_emulator
from bots.server.identity import mint
from bots.web import DIST_DIR
from testkit.bot_server import BotServer, EmulatorControl, clean_env, start_bot, stopped_at_exit
from testkit.processes import Proc, free_port
from testkit.waiting import until
from testkit.webrtc.client import RTVIMessage, WebRTCClient
from transcripts import Transcript, list_sessions, load_session

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

STOP_TIMEOUT = 20.0
TURN_TIMEOUT = 45.0
SENTINEL_KEY = "TEST-SENTINEL-not-a-real-google-api-key-000000"
CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1", "0.0.0.0"}


# ---------------------------------------------------------------------- processes


def is_emulator(proc: Proc) -> bool:
    return "-m" in proc.argv and "emulator" in proc.argv


def accepts_connections(url: str) -> bool:
    parts = urlsplit(url)
    assert parts.hostname and parts.port, url
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def run_command(tmp_path: Path, *args: str, **env: str) -> Iterator[BotServer]:
    """Start `python -m bots --host 127.0.0.1 --port <free> *args`; always leave nothing behind.

    Once the run command has exited, none of the processes it started may still be alive.
    """
    server = start_bot(None, tmp_path, *args, log_name="run-command.log", **env)
    with stopped_at_exit(server, grace=0) as run:
        yield run


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotServer]:
    """The run command with no key: its own emulator, the assistant, our page."""
    with run_command(tmp_path_factory.mktemp("run-command")) as run:
        run.wait_until_serving()
        yield run


@pytest.fixture(scope="module")
def legacy_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotServer]:
    """The run command on gemini-3.1-flash-live-preview, the legacy preview."""
    legacy = {"GEMINI_MODEL": "gemini-3.1-flash-live-preview"}
    with run_command(tmp_path_factory.mktemp("run-command-3.1"), **legacy) as run:
        run.wait_until_serving()
        yield run


@pytest.fixture(params=["gemini-3.8-live", "gemini-3.1-flash-live-preview"])
def either_model_bot(request: pytest.FixtureRequest) -> BotServer:
    """The conversation that matters, on the default model and on the legacy one."""
    name = "bot" if request.param == "gemini-3.8-live" else "legacy_bot"
    server: BotServer = request.getfixturevalue(name)
    return server


@pytest.fixture
def sentinel_emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    """An emulator that accepts only `SENTINEL_KEY`."""
    emulator = start_emulator(tmp_path / "certs", extra_args=("--api-key", SENTINEL_KEY))
    try:
        yield emulator
    finally:
        emulator.stop()


# ---------------------------------------------------------------------- conversation


@dataclass
class Turn:
    """One spoken question and what came back for it."""

    started: float
    ended: float
    first_audio: float
    messages: list[RTVIMessage]
    loud_seconds: float

    @property
    def latency(self) -> float:
        """End of the user's audio to the first audible bot audio, as the client received it."""
        return self.first_audio - self.ended

    def texts(self, *types: str) -> str:
        return "".join(m.text for m in self.messages if m.type in types)

    @property
    def user_text(self) -> str:
        return self.texts("user-transcription")

    @property
    def bot_text(self) -> str:
        return self.texts("bot-transcription") or self.texts("bot-llm-text")

    def metrics_of(self, processor: str) -> list[RTVIMessage]:
        """`metrics` messages that report on a processor (e.g. "PiperTTSService")."""
        return [m for m in self.messages if m.type == "metrics" and processor in str(m.data)]

    def function_calls(self) -> set[str]:
        return {
            str(m.data.get("function_name"))
            for m in self.messages
            if m.type.startswith("llm-function-call-") and isinstance(m.data, dict)
        }


def arrived(type_: str, *, after: float) -> Callable[[RTVIMessage], bool]:
    """A predicate for an RTVI message of a type that arrived at or after `after`."""
    return lambda m: m.at >= after and m.type == type_


async def ask(client: WebRTCClient, wav: str, answer: re.Pattern[str]) -> Turn:
    """Say a fixture; wait for a bot transcription matching `answer` and the end of its speech."""
    started = time.monotonic()
    ended = await client.say(AUDIO_DIR / wav)
    first_audio = await client.wait_for_bot_audio(after=ended, timeout=TURN_TIMEOUT)
    said = await client.wait_for(
        lambda m: m.at >= started and m.type == "bot-transcription" and answer.search(m.text),
        TURN_TIMEOUT,
    )
    for end in ("bot-llm-stopped", "bot-stopped-speaking"):
        await client.wait_for(arrived(end, after=said.at), TURN_TIMEOUT)
    await client.wait_for_bot_quiet(quiet_for=0.8, timeout=TURN_TIMEOUT)
    return Turn(
        started=started,
        ended=ended,
        first_audio=first_audio,
        messages=[m for m in client.messages if m.at >= started],
        loud_seconds=client.bot_audio_seconds(since=ended),
    )


async def wait_for_transcript(
    folder: Path, *, ended: bool, timeout: float = STOP_TIMEOUT
) -> Transcript:
    """The newest session in `folder`, once it has ended (if `ended`)."""

    def newest() -> Transcript | None:
        sessions = list_sessions(folder)
        if not sessions:
            return None
        transcript = load_session(folder, sessions[-1].session_id)
        return transcript if not ended or transcript.ended is not None else None

    what = f"an {'ended ' if ended else ''}transcript in {folder}"
    try:
        return await until(newest, what, timeout, poll=0.1)
    except AssertionError as exc:
        pytest.fail(f"{exc}: {list_sessions(folder)}")


def assert_spoken_answer(turn: Turn) -> None:
    """Bot audio with energy, about as long as the words the bot said."""
    words = len(turn.bot_text.split())
    assert turn.loud_seconds > 1.0, f"{turn.loud_seconds:.2f} s of bot audio for {turn.bot_text!r}"
    per_word = turn.loud_seconds / max(words, 1)
    assert 0.1 < per_word < 1.2, (
        f"{turn.loud_seconds:.2f} s of audible bot audio for {words} words: {turn.bot_text!r}"
    )


# ---------------------------------------------------------------------- the page


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "srcset", "poster", "data", "action"} and value:
                self.urls.append(value)


ABSOLUTE_URL = re.compile(r"""(?:https?|wss?)://[^\s"'`)<>\\]+""")
CSS_REFERENCE = re.compile(r"""(?:url\(\s*|@import\s+)["']?([^"')\s]+)""")
LOADING_CONTEXT = re.compile(
    r"""(?:fetch|import|importScripts|Worker|WebSocket|EventSource|url)\s*\(\s*["'`]?$"""
    r"""|(?:src|href)\s*=\s*["'`]?$|@import\s+["']?$""",
    re.IGNORECASE,
)


def foreign_urls(text: str) -> list[tuple[str, str]]:
    """Absolute URLs to hosts other than this machine, each with the 40 characters before it."""
    out = []
    for match in ABSOLUTE_URL.finditer(text):
        if (urlsplit(match.group(0)).hostname or "") not in LOCAL_HOSTS:
            out.append((match.group(0), text[max(0, match.start() - 40) : match.start()]))
    return out


# ---------------------------------------------------------------------- tests


def test_the_banner_says_plainly_that_the_model_is_the_local_emulator_not_gemini(
    bot: BotServer,
) -> None:
    output = bot.output()
    assert "LOCAL GEMINI LIVE EMULATOR" in output and "not Gemini" in output, bot.tail()
    assert "Model: Gemini Live" not in output
    assert f"Open http://127.0.0.1:{bot.port}/client/ in a browser." in output
    emulators = [p for p in bot.children if is_emulator(p)]
    assert len(emulators) == 1, f"expected one emulator child, found {bot.children}"
    assert accepts_connections(bot.emulator_url())


def test_the_page_at_client_is_our_own_bundle_and_loads_nothing_from_another_host(
    bot: BotServer,
) -> None:
    with httpx.Client(base_url=bot.base_url, trust_env=False, timeout=10) as http:
        page = http.get("/client/")
        assert page.status_code == 200
        assert page.content == (DIST_DIR / "index.html").read_bytes()
        parser = _References()
        parser.feed(page.text)
        assets = [u for u in parser.urls if not u.startswith("data:")]
        assert sorted(assets) == ["./app.css", "./app.js"], parser.urls
        for ref in assets:
            url = urljoin(f"{bot.base_url}/client/", ref)
            assert urlsplit(url).hostname == "127.0.0.1", url
            asset = http.get(url)
            assert asset.status_code == 200, url
            assert asset.content == (DIST_DIR / Path(ref).name).read_bytes(), url
            if ref.endswith(".css"):
                for target in CSS_REFERENCE.findall(asset.text):
                    assert target.startswith("data:") or not urlsplit(target).netloc, target
            for found, before in foreign_urls(asset.text):
                assert not LOADING_CONTEXT.search(before), f"{ref} loads {found}: …{before}"
                # What is left are inert strings: package metadata and links in error texts.
                assert urlsplit(found).hostname == "github.com", f"{ref} names {found}"
        assert not foreign_urls(page.text)


def test_the_root_redirects_to_the_client_page(bot: BotServer) -> None:
    with httpx.Client(base_url=bot.base_url, trust_env=False, timeout=10) as http:
        response = http.get("/")
    assert response.is_redirect, response
    assert urljoin(f"{bot.base_url}/", response.headers["location"]) == f"{bot.base_url}/client/"


async def test_a_spoken_question_gets_the_time_from_its_tool_and_after_a_renegotiation_12x7_is_84(
    either_model_bot: BotServer, request: pytest.FixtureRequest
) -> None:
    bot = either_model_bot
    since = time.time()
    async with WebRTCClient(bot.base_url) as client:
        await client.connect()

        first = await ask(client, "what_time_tokyo.wav", CLOCK)
        assert "Tokyo" in first.user_text, client.summary()
        assert "get_current_time" in first.function_calls(), client.summary()
        assert CLOCK.search(first.bot_text), first.bot_text
        assert_spoken_answer(first)

        # What the JS transport does when the bot asks; the next turn runs on the new offer.
        await client.renegotiate()
        second = await ask(client, "multiply.wav", re.compile(r"\b84\b"))
        assert re.search(r"(?i)(12|twelve)\b.*\b(7|seven)", second.user_text), second.user_text
        assert "calculate" in second.function_calls(), client.summary()
        assert "84" in second.bot_text
        assert_spoken_answer(second)
        assert not second.metrics_of("PiperTTSService"), "AUDIO modality: Gemini speaks, no TTS"

        assert not client.errors, client.errors
        assert not client.of_type("error"), client.summary()
        print(
            f"\nturn latency (end of user audio → first bot audio): "
            f"time tool {first.latency:.2f} s, calculator {second.latency:.2f} s"
        )
    # The model that answered is the one asked for: for the run command with no GEMINI_MODEL,
    # the default, gemini-3.8-live.
    with contextlib.closing(EmulatorControl(bot)) as control:
        seen = control.sessions(since)
    model = f"models/{request.node.callspec.params['either_model_bot']}"
    assert seen and {s["model"] for s in seen} == {model}, [s["model"] for s in seen]
    assert any("Tokyo" in t["text"] for s in seen for t in s["history"]), seen
    # The browser left: the session's transcript is on disk, whole and marked ended.
    transcript = await wait_for_transcript(bot.data_dir / "transcripts", ended=True)
    users = [t.text for t in transcript.user_turns]
    assert any("Tokyo" in u for u in users), users
    calls = {c["name"]: c for c in transcript.tool_calls}
    assert calls["get_current_time"]["arguments"] == {"place": "Tokyo"}
    assert calls["get_current_time"]["outcome"] == "ok"
    assert calls["calculate"]["result"]["result"] == 84
    bots = [t.text for t in transcript.bot_turns]
    assert any(CLOCK.search(b) for b in bots) and any("84" in b for b in bots), bots


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_a_stop_signal_ends_the_run_command_with_code_0_and_stops_its_emulator(
    tmp_path: Path, sig: signal.Signals
) -> None:
    with run_command(tmp_path) as run:
        await asyncio.to_thread(run.wait_until_serving)
        emulator_url = run.emulator_url()
        emulators = [p for p in run.children if is_emulator(p)]
        assert len(emulators) == 1, run.children
        async with WebRTCClient(run.base_url) as client:
            await client.connect()  # a browser is connected while the user presses Ctrl-C
            began = time.monotonic()
            code = await asyncio.to_thread(run.interrupt, sig)
            stopped_in = time.monotonic() - began
        assert code == 0, run.tail()
        assert "Traceback" not in run.output(), run.tail()
        assert not emulators[0].alive(), "the emulator child outlived the run command"
        assert not [p for p in run.children if p.alive()], run.children
        assert not accepts_connections(emulator_url)
        assert not accepts_connections(run.base_url)
        print(f"\nstopped {stopped_in:.2f} s after {sig.name} with a browser connected")


async def test_sigterm_lets_the_bot_finish_speaking_records_the_end_and_closes_gemini_cleanly(
    tmp_path: Path,
) -> None:
    emulator = start_emulator(tmp_path / "certs")
    try:
        with run_command(
            tmp_path, EMULATOR_URL=emulator.base_url, EMULATOR_CA=str(emulator.ca)
        ) as run:
            await asyncio.to_thread(run.wait_until_serving)
            async with WebRTCClient(run.base_url) as client:
                await client.connect()
                ended = await client.say(AUDIO_DIR / "long_story.wav")
                await client.wait_for_bot_audio(after=ended, timeout=TURN_TIMEOUT)
                signalled = time.monotonic()
                os.killpg(run.process.pid, signal.SIGTERM)  # what `docker stop` sends
                code = await asyncio.to_thread(run.process.wait, STOP_TIMEOUT)
                stopped_in = time.monotonic() - signalled
                spoke_on = client.bot_audio_seconds(since=signalled)
            assert code == 0, run.tail()
            assert "Traceback" not in run.output(), run.tail()
        # The bot went on talking for a moment, then the process left within the grace period.
        assert spoke_on > 0.3, spoke_on
        assert stopped_in < lifecycle.GRACE_SECS + 5, stopped_in
        transcript = await wait_for_transcript(tmp_path / "data" / "transcripts", ended=True)
        assert transcript.ended is not None
        async with httpx.AsyncClient(verify=str(emulator.ca), trust_env=False) as http:
            sessions = (await http.get(f"{emulator.base_url}/emulator/sessions")).json()
        assert sessions and sessions[-1]["close_code"] == 1000, (
            sessions[-1]["close_code"],
            sessions[-1]["close_reason"],
        )
    finally:
        emulator.stop()
    print(f"\nSIGTERM: bot spoke {spoke_on:.1f} s more, process exited after {stopped_in:.1f} s")


async def test_a_second_stop_signal_stops_at_once(tmp_path: Path) -> None:
    with run_command(tmp_path) as run:
        await asyncio.to_thread(run.wait_until_serving)
        async with WebRTCClient(run.base_url) as client:
            await client.connect()
            ended = await client.say(AUDIO_DIR / "long_story.wav")
            await client.wait_for_bot_audio(after=ended, timeout=TURN_TIMEOUT)
            os.killpg(run.process.pid, signal.SIGTERM)
            # The first signal is being handled (the sessions are ending): now press Ctrl-C.
            await until(lambda: "stopping: ending" in run.output(), "the graceful stop", poll=0.05)
            signalled = time.monotonic()
            os.killpg(run.process.pid, signal.SIGINT)
            await asyncio.to_thread(run.process.wait, STOP_TIMEOUT)
            stopped_in = time.monotonic() - signalled
    assert stopped_in < lifecycle.GRACE_SECS, stopped_in


async def test_with_a_key_the_conversation_works_and_the_key_reaches_neither_log_nor_page(
    tmp_path: Path, sentinel_emulator: EmulatorProcess
) -> None:
    with run_command(
        tmp_path,
        GOOGLE_API_KEY=SENTINEL_KEY,
        EMULATOR_URL=sentinel_emulator.base_url,
        EMULATOR_CA=str(sentinel_emulator.ca),
    ) as run:
        await asyncio.to_thread(run.wait_until_serving)
        assert not [p for p in run.children if is_emulator(p)], "a key and EMULATOR_URL: no child"
        async with WebRTCClient(run.base_url) as client:
            await client.connect()
            # The emulator refuses any other key, so an answer proves the key was forwarded.
            turn = await ask(client, "multiply.wav", re.compile(r"\b84\b"))
            assert_spoken_answer(turn)
            async with httpx.AsyncClient(base_url=run.base_url, trust_env=False) as http:
                pages = [await http.get(p) for p in ("/", "/client/", "/client/app.js")]
                pages.append(await http.get("/client/app.css"))
        seen_by_page = [r.text + str(r.headers) for r in pages]
        seen_by_page += [e.text + str(e.headers) for e in client.http]
        seen_by_page += [str(m.raw) for m in client.messages]
        assert client.start_response is not None
        assert not [s for s in seen_by_page if SENTINEL_KEY in s]
        assert await asyncio.to_thread(run.interrupt) == 0
        assert SENTINEL_KEY not in run.output()
        assert "not Gemini; EMULATOR_URL is set" in run.output(), run.tail()
        assert "no GOOGLE_API_KEY set" not in run.output()


SENTINEL_SECRET = "TEST-SENTINEL-session-secret-000000000000"


async def test_a_session_that_fails_leaks_neither_the_key_nor_the_token_anywhere(
    tmp_path: Path, sentinel_emulator: EmulatorProcess
) -> None:
    """The Gemini connection is dropped and refused until the stage gives up: a fatal error,
    logged with its cause, reaches the page. Neither the API key nor the session token may
    appear in the log, the transcript folder, an HTTP answer or an RTVI message."""
    token = mint(SENTINEL_SECRET, "ana", 10)
    with run_command(
        tmp_path,
        GOOGLE_API_KEY=SENTINEL_KEY,
        EMULATOR_URL=sentinel_emulator.base_url,
        EMULATOR_CA=str(sentinel_emulator.ca),
        SESSION_SECRET=SENTINEL_SECRET,
        RECONNECT_ATTEMPTS="1",
    ) as run:
        await asyncio.to_thread(run.wait_until_serving)
        control = httpx.AsyncClient(
            base_url=sentinel_emulator.base_url,
            verify=ssl.create_default_context(cafile=str(sentinel_emulator.ca)),
            headers={"x-goog-api-key": SENTINEL_KEY},
            trust_env=False,
        )
        async with (
            control,
            WebRTCClient(run.base_url, headers={"Authorization": f"Bearer {token}"}) as client,
        ):
            await client.connect()
            await ask(client, "multiply.wav", re.compile(r"\b84\b"))
            (live,) = [s for s in (await control.get("/emulator/sessions")).json() if s["open"]]
            faults = await control.post("/emulator/faults", json={"refuse_connections": 20})
            assert faults.status_code == 200, faults.text
            dropped = await control.post(f"/emulator/sessions/{live['id']}/drop")
            assert dropped.status_code == 200, dropped.text
            fatal = await client.wait_for(
                lambda m: m.type == "error" and bool((m.data or {}).get("fatal")), TURN_TIMEOUT
            )
        assert await asyncio.to_thread(run.interrupt) == 0
        log = run.output()
    assert "could not restore" in str(fatal.raw).lower() or "connect" in str(fatal.raw).lower()
    assert "Lost the connection" in log or "Could not connect" in log, log[-3000:]
    seen = [log, *(p.read_text(errors="replace") for p in (run.data_dir / "transcripts").iterdir())]
    seen += [e.text + str(e.headers) for e in client.http]
    seen += [str(m.raw) for m in client.messages]
    for secret in (SENTINEL_KEY, token, SENTINEL_SECRET):
        assert not [text for text in seen if secret in text], secret[:12]
    # The transcript belongs to the token's user: its start (in the file and the index) says so.
    users = {
        event["meta"].get("user")
        for path in (run.data_dir / "transcripts").glob("*.jsonl")
        for event in map(json.loads, path.read_text().splitlines())
        if isinstance(event.get("meta"), dict)
    }
    assert users == {"ana"}


def run_until_refused(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """`python -m bots` with `settings` it refuses before serving: its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "bots", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=tmp_path,
        env=clean_env(DATA_DIR=str(tmp_path / "data"), **settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )


def test_a_setting_the_model_refuses_stops_the_bot_with_one_line(tmp_path: Path) -> None:
    result = run_until_refused(tmp_path, THINKING_LEVEL="low")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "THINKING_LEVEL: gemini-3.8-live takes no thinking level; unset it, or set "
        "GEMINI_MODEL=gemini-3.8-live-extended-thinking to think"
    ]
    assert not (tmp_path / "data" / "emulator-certs").exists(), "no emulator was started"


def test_a_bad_setting_exits_with_code_2_and_names_the_variable(tmp_path: Path) -> None:
    result = run_until_refused(tmp_path, RESPONSE_MODALITY="VIDEO")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "RESPONSE_MODALITY" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "emulator-certs").exists(), "no emulator for bad settings"


async def test_text_modality_speaks_through_piper_and_shows_the_text(tmp_path: Path) -> None:
    # TEXT spoken by Piper is what gemini-3.1 keeps: the 3.8 family answers in audio only.
    legacy = {"GEMINI_MODEL": "gemini-3.1-flash-live-preview"}
    with run_command(tmp_path, RESPONSE_MODALITY="TEXT", **legacy) as run:
        await asyncio.to_thread(run.wait_until_serving)
        async with WebRTCClient(run.base_url) as client:
            await client.connect()
            turn = await ask(client, "multiply.wav", re.compile(r"\b84\b"))
        assert "84" in turn.bot_text
        assert "12" in turn.user_text or "twelve" in turn.user_text.lower(), turn.user_text
        assert_spoken_answer(turn)
        # The audio is the TTS stage's: Piper reports the characters it spoke.
        assert any("characters" in str(m.data) for m in turn.metrics_of("PiperTTSService"))
        assert "84" in turn.texts("bot-tts-text"), client.summary()
        assert await asyncio.to_thread(run.interrupt) == 0
