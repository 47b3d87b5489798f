"""Prometheus metrics (`bots.metrics`): each moves when its event happens, driven by the real code,
and `/metrics` is served by the same rule as the transcript pages.

The values are process-wide, so every test reads how much a value moved, never its level. The
Prometheus server scraping a real bot is `tests/test_metrics_prometheus.py`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterruptionFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from prometheus_client.parser import text_string_to_metric_families
from resilience_harness import run_bot
from test_resilience import drop, go_away, wait_connected
from test_server import config, real_offer, serve

from bots import metrics
from bots.server.assemble import make_app
from bots.server.loop_watch import LoopWatch
from bots.server.sessions import Limits, Refused, SessionBook
from bots.settings import Settings
from emulator.server import Running
from observers.bot_metrics import BotMetricsObserver
from observers.transcript import TranscriptObserver
from processors.frames import ToolCallEvent, ToolCallEventFrame, ToolOutcome
from testkit.clock import FakeClock
from testkit.waiting import until
from transcripts import TranscriptRecorder, TranscriptStore

ADMIN_TOKEN = "operator-token-long-enough-for-metrics"
DOWN, UP = FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM
CHUNK_SECS = 0.04


Sample = tuple[str, dict[str, str]]
"""A sample of `bots.metrics`: its name (`..._total`, `..._count`, ...) and its labels."""


def sample(metric: str, /, **labels: str) -> Sample:
    return metric, labels


def read(of: Sample) -> float:
    return metrics.REGISTRY.get_sample_value(*of) or 0.0


class Moved:
    """How far samples of `bots.metrics` moved since this was made."""

    def __init__(self, *samples: Sample) -> None:
        self._before = {repr(s): read(s) for s in samples}

    def __call__(self, of: Sample) -> float:
        return read(of) - self._before[repr(of)]


# ------------------------------------------------------------------------------------------------
# Sessions


@pytest.mark.unit
def test_a_full_server_and_a_busy_client_count_their_refusals_by_reason() -> None:
    full, mine = (
        sample("gemini_agent_sessions_refused_total", reason="full"),
        sample("gemini_agent_sessions_refused_total", reason="per_client"),
    )
    moved = Moved(full, mine)
    book = SessionBook(Limits(max_sessions=2, max_per_client=1))
    book.reserve("address:a", "local-user", {})
    with pytest.raises(Refused) as busy_client:
        book.reserve("address:a", "local-user", {})
    book.reserve("address:b", "local-user", {})
    with pytest.raises(Refused) as full_server:
        book.reserve("address:c", "local-user", {})
    assert (busy_client.value.status, full_server.value.status) == (429, 503)
    assert moved(full) == 1 and moved(mine) == 1


@pytest.mark.unit
async def test_a_draining_server_counts_its_refusals_as_draining() -> None:
    draining = sample("gemini_agent_sessions_refused_total", reason="draining")
    moved = Moved(draining)
    http, sessions, _ = await serve(config())
    sessions.draining = True
    async with http:
        refused = await http.post("/start", json={})
    assert refused.status_code == 503
    assert moved(draining) == 1


@pytest.mark.emulator  # a real aiortc peer connection answers the offer
async def test_a_session_counts_as_started_and_active_while_its_bot_runs_then_as_ended() -> None:
    active, started, ended = (
        sample("gemini_agent_sessions_active"),
        sample("gemini_agent_sessions_started_total"),
        sample("gemini_agent_sessions_ended_total"),
    )
    moved = Moved(active, started, ended)
    http, sessions, bot = await serve(config())
    async with http:
        sid = (await http.post("/start", json={})).json()["sessionId"]
        offer = {"sdp": await real_offer(), "type": "offer"}
        assert (await http.post(f"/sessions/{sid}/api/offer", json=offer)).status_code == 200
        await asyncio.wait_for(bot.started.wait(), 10)
        assert (moved(active), moved(started), moved(ended)) == (1, 1, 0)
        await sessions.aclose()
    assert (moved(active), moved(started), moved(ended)) == (0, 1, 1)


# ------------------------------------------------------------------------------------------------
# /metrics


def app_for(tmp_path: Path, host: str, **settings: Any) -> httpx.AsyncClient:
    values = {"data_dir": tmp_path, **settings}
    bot_settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]

    async def no_bot(_runner_args: Any) -> None:
        raise AssertionError("no session starts here")

    app = make_app(bot_settings, no_bot, transport="webrtc", host=host).app
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


@pytest.mark.unit
async def test_a_local_bot_serves_its_metrics_in_prometheus_text_format(tmp_path: Path) -> None:
    async with app_for(tmp_path, "127.0.0.1") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    expected = {
        "gemini_agent_sessions_active",
        "gemini_agent_sessions_started",
        "gemini_agent_sessions_ended",
        "gemini_agent_sessions_refused",
        "gemini_agent_turn_latency_seconds",
        "gemini_agent_gemini_connects",
        "gemini_agent_gemini_reconnects",
        "gemini_agent_gemini_goaways",
        "gemini_agent_gemini_failures",
        "gemini_agent_tool_calls",
        "gemini_agent_output_audio_gaps",
        "gemini_agent_event_loop_lag_seconds",
        "gemini_agent_event_loop_stalls",
        "process_resident_memory_bytes",
    }
    assert expected <= set(families), sorted(set(expected) - set(families))
    reasons = {s.labels["reason"] for s in families["gemini_agent_sessions_refused"].samples}
    assert {"full", "per_client", "draining"} <= reasons


@pytest.mark.unit
async def test_with_an_admin_token_the_metrics_need_it_as_a_bearer_token(
    tmp_path: Path, log: list[str]
) -> None:
    async with app_for(tmp_path, "127.0.0.1", admin_token=ADMIN_TOKEN) as http:
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"authorization": "Bearer not-the-token-at-all"})
        login = await http.post("/transcripts/login", data={"token": ADMIN_TOKEN})
        signed_in = login.headers["set-cookie"].split(";")[0]  # the transcripts' cookie
        cookie = await http.get("/metrics", headers={"cookie": signed_in})
        right = await http.get("/metrics", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    for refused in (missing, wrong, cookie):
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"] == "Bearer"
        assert ADMIN_TOKEN not in refused.text
    assert right.status_code == 200 and "gemini_agent_sessions_active" in right.text
    assert not [line for line in log if ADMIN_TOKEN in line], "the token was logged"


@pytest.mark.unit
async def test_behind_the_token_a_scraper_may_call_by_address_without_it_the_host_check_stays(
    tmp_path: Path,
) -> None:
    by_address = {"host": "10.1.2.3:7860", "authorization": f"Bearer {ADMIN_TOKEN}"}
    async with app_for(tmp_path, "127.0.0.1", admin_token=ADMIN_TOKEN) as http:
        scraped = await http.get("/metrics", headers=by_address)
        page = await http.get("/client/", headers=by_address)
    async with app_for(tmp_path, "127.0.0.1") as http:
        open_by_address = await http.get("/metrics", headers={"host": "10.1.2.3:7860"})
    assert scraped.status_code == 200
    assert page.status_code == 400, "every other route keeps the Host check"
    assert open_by_address.status_code == 400, "without the token, a rebinding page gets nothing"


@pytest.mark.unit
async def test_on_the_network_without_an_admin_token_there_are_no_metrics(tmp_path: Path) -> None:
    secret = "a-session-secret-long-enough"
    async with app_for(tmp_path, "0.0.0.0", session_secret=secret) as http:
        absent = await http.get("/metrics")
    async with app_for(tmp_path, "0.0.0.0", session_secret=secret, admin_token=ADMIN_TOKEN) as http:
        guarded = await http.get("/metrics", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert absent.status_code == 404
    assert guarded.status_code == 200


# ------------------------------------------------------------------------------------------------
# The event loop


@pytest.mark.unit
async def test_the_loop_watch_feeds_the_lag_histogram_and_counts_a_stall() -> None:
    lag, stalls = (
        sample("gemini_agent_event_loop_lag_seconds_count"),
        sample("gemini_agent_event_loop_stalls_total"),
    )
    lag_sum = sample("gemini_agent_event_loop_lag_seconds_sum")
    moved = Moved(lag, stalls, lag_sum)
    reported = threading.Event()
    sink = logger.add(
        lambda m: reported.set() if "stalled" in m.record["message"] else None, level="WARNING"
    )
    try:
        async with LoopWatch(stall_ms=50).watching() as watch:
            await until(lambda: moved(lag) >= 2, "two heartbeats")
            assert reported.wait(30), "the watchdog never reported the stall"  # blocks the loop
            await until(lambda: watch.stalls, "the heartbeat after the stall")
    finally:
        logger.remove(sink)
    assert moved(stalls) >= 1  # a loaded machine may add a stall of its own
    assert moved(lag_sum) >= 0.05, "the stall's lateness is in the histogram"


# ------------------------------------------------------------------------------------------------
# Turn latency, tool calls, gaps in the bot's voice


def pushed(
    frame: Frame,
    at: float = 0.0,
    *,
    source: FrameProcessor | None = None,
    direction: FrameDirection = DOWN,
) -> FramePushed:
    """`frame` as first pushed at `at` (pipeline clock, seconds)."""
    source = source or FrameProcessor(name="from")
    return FramePushed(source, FrameProcessor(name="to"), frame, direction, int(at * 1e9))


@pytest.mark.unit
async def test_each_latency_the_transcript_measures_is_one_turn_latency_observation(
    tmp_path: Path,
) -> None:
    count, total = (
        sample("gemini_agent_turn_latency_seconds_count"),
        sample("gemini_agent_turn_latency_seconds_sum"),
    )
    moved = Moved(count, total)
    clock = FakeClock(1_700_000_000.0)
    recorder = TranscriptRecorder(TranscriptStore(tmp_path), "metrics-session", clock=clock)
    observer = TranscriptObserver(recorder, on_latency=metrics.TURN_LATENCY.observe)
    await observer.on_push_frame(pushed(StartFrame()))
    heard = TranscriptionFrame(text="What time is it?", user_id="", timestamp="")
    await observer.on_push_frame(pushed(heard, direction=UP))  # from the model, upstream
    clock.advance(0.8)
    for _ in range(2):
        await observer.on_push_frame(pushed(TTSAudioRawFrame(b"\1\0" * 480, 24000, 1)))
    await observer.cleanup()
    assert moved(count) == 1, "one end of speech times one answer"
    assert moved(total) == pytest.approx(0.8)


@pytest.mark.unit
async def test_finished_tool_calls_are_counted_by_declared_name_and_outcome_others_as_other() -> (
    None
):
    metrics.declare_tools(["get_current_time"])
    ok = sample("gemini_agent_tool_calls_total", name="get_current_time", outcome="ok")
    timed_out = sample(
        "gemini_agent_tool_calls_total", name="get_current_time", outcome="timed_out"
    )
    other = sample("gemini_agent_tool_calls_total", name="other", outcome="failed")
    moved = Moved(ok, timed_out, other)
    observer = BotMetricsObserver(on_tool_call=metrics.tool_call, on_output_gap=metrics.output_gap)
    for name, outcome in [
        ("get_current_time", ToolOutcome.OK),
        ("get_current_time", ToolOutcome.TIMED_OUT),
        ("a_tool_nobody_declared", ToolOutcome.FAILED),
    ]:
        event = ToolCallEvent(name, f"call-{name}-{outcome}", {}, outcome)
        await observer.on_push_frame(pushed(ToolCallEventFrame(event=event)))
    assert (moved(ok), moved(timed_out), moved(other)) == (1, 1, 1)
    undeclared = {"name": "a_tool_nobody_declared", "outcome": "failed"}
    assert read(sample("gemini_agent_tool_calls_total", **undeclared)) == 0, "no series of its own"


class Voice:
    """Plays the output transport's frames into a `BotMetricsObserver`, and keeps its gaps."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.observer = BotMetricsObserver(
            on_tool_call=lambda _event: None, on_output_gap=self.gaps.append
        )
        self.transport = BaseOutputTransport(TransportParams(audio_out_enabled=True))

    async def sent(self, *times: float) -> None:
        """40 ms chunks of 24 kHz audio, each sent by the output transport at its time."""
        for at in times:
            chunk = TTSAudioRawFrame(b"\1\0" * int(24000 * CHUNK_SECS), 24000, 1)
            await self.observer.on_push_frame(pushed(chunk, at, source=self.transport))

    async def frame(self, frame: Frame) -> None:
        await self.observer.on_push_frame(pushed(frame))


@pytest.fixture
async def voice() -> AsyncIterator[Voice]:
    yield Voice()


@pytest.mark.unit
async def test_a_pause_in_the_bots_voice_is_one_gap_and_the_silence_after_it_stopped_none(
    voice: Voice,
) -> None:
    await voice.frame(BotStartedSpeakingFrame())
    await voice.sent(0.04, 0.08, 0.12)  # paced, as SmallWebRTC sends: no gap
    await voice.sent(0.16 + 0.1)  # 100 ms late
    await voice.sent(0.30, 0.34)
    await voice.frame(BotStoppedSpeakingFrame())
    await voice.sent(3.0)  # not speaking: silence between answers
    await voice.frame(BotStartedSpeakingFrame())
    await voice.sent(5.0, 5.04)  # a new answer starts a new run
    assert voice.gaps == [pytest.approx(0.1)]


@pytest.mark.unit
async def test_audio_handed_over_ahead_of_playback_is_no_gap_while_it_lasts(voice: Voice) -> None:
    await voice.frame(BotStartedSpeakingFrame())
    await voice.sent(*[0.0] * 10)  # 400 ms in one burst
    await voice.sent(0.45)  # 50 ms after it ran out: under the threshold
    await voice.sent(0.60)  # 110 ms after the last ran out (0.49)
    assert voice.gaps == [pytest.approx(0.11)]


@pytest.mark.unit
async def test_an_interruption_ends_the_run_so_the_next_answer_is_no_gap(voice: Voice) -> None:
    await voice.frame(BotStartedSpeakingFrame())
    await voice.sent(0.04, 0.08)
    await voice.frame(InterruptionFrame())
    await voice.sent(1.5, 1.54)
    assert voice.gaps == []


# ------------------------------------------------------------------------------------------------
# The Gemini connection


@pytest.mark.emulator
@pytest.mark.timeout(120)
async def test_connects_goaways_drops_and_reconnects_are_counted(
    emulator: Running, tmp_path: Path
) -> None:
    connects, reconnects, goaways = (
        sample("gemini_agent_gemini_connects_total"),
        sample("gemini_agent_gemini_reconnects_total"),
        sample("gemini_agent_gemini_goaways_total"),
    )
    lost = sample("gemini_agent_gemini_failures_total", reason="lost")
    moved = Moved(connects, reconnects, goaways, lost)
    async with run_bot(emulator, tmp_path) as bot:
        assert (moved(connects), moved(reconnects)) == (1, 0)
        await go_away(bot, 10.0)
        await until(lambda: moved(connects) == 2, "the switch after goAway")
        await wait_connected(bot)
        assert (moved(goaways), moved(reconnects), moved(lost)) == (1, 0, 0)
        await drop(bot)
        await until(lambda: moved(connects) == 3, "the reconnection after the drop")
        await wait_connected(bot)
    assert (moved(reconnects), moved(lost), moved(goaways)) == (1, 1, 1)
