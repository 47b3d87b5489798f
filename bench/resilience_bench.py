"""Measure the gap in bot audio a user hears around a goAway switch and after a dropped socket.

Run `python -m bench.resilience_bench` (`--trials N`, default 20). It starts the emulator in this
process, talking at real time, and runs the same scripted conversation many times through a small
pipeline (user aggregator, Gemini Live stage, a simulated speaker, assistant aggregator), once with
the kit's `GeminiLiveStage` and once with Pipecat's stock `GeminiLiveLLMService`, trials
interleaved. Every trial opens a new pipeline and a new Gemini session. Faults are injected
through the emulator's control API, as a test would.

The conversation: the user types "first question"; the model says A1 (2.2 s of speech). Half a
second after A1 starts playing the fault strikes:

- goaway: `goAway` with `timeLeft` 3 s. Its deadline falls inside A2 (2.9 s), the answer to the
  question the user asks after A1; a service that lets the server close the socket loses the rest
  of A2.
- drop: the socket is cut (no close frame). A1 is lost with it whatever the service does; what
  differs is how soon, and whether, the bot answers again.
- outage: the socket is cut and new connections are refused (HTTP 503) for 1 s, as when the
  service restarts; not asked for by the issue, shown because it is where the two services part.
- none: no fault, the reference for a normal turn.

The simulated user asks the next question 0.3 s after the bot's audio stops, twice (A2, then A3,
0.85 s), and asks again if no answer starts within 4 s (at most twice).

The speaker plays each audio chunk when it arrives or when the previous one ends, whichever is
later. For each of A1 and A2, *speech cut* is the part of the answer that never played (its full
length is measured from the emulator's own synthesis), and *silence* is the time from the end of
what played to the start of the next answer. The **gap in bot audio** is their sum, the longest
over A1 and A2: what the user heard missing, compared with hearing the answer through and then
asking the next question. In a normal turn it is just the user's 0.3 s plus the model's reply
latency. A trial that never got A3 is counted as not recovered and left out of the figures
(re-asks too).

Prints a Markdown table on stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from loguru import logger
from pipecat.frames.frames import Frame, InputTextRawFrame, LLMRunFrame, TTSAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService
from pipecat.workers.runner import WorkerRunner

from bots.gemini_live.service import GeminiLiveStage
from emulator import speech
from emulator.client import http_options
from emulator.scenario import parse_scenario
from emulator.server import Emulator, Running, running
from testkit.waiting import until, until_async

MODEL = "models/gemini-3.1-flash-live-preview"
QUESTIONS = ("first question", "second question", "third question")
ANSWERS = (
    "Sure, here is the first answer for you.",
    "This is the second answer, which takes a moment.",
    "That is all.",
)
FAULT_AFTER_S = 0.5  # into A1's playback
GOAWAY_TIME_LEFT_S = 3.0
OUTAGE_S = 1.0
REACTION_S = 0.3
REASK_AFTER_S = 4.0
MAX_ASKS = 3
READY_TIMEOUT_S = 15.0
POLL_S = 0.005
SERVICES: dict[str, type[GeminiLiveLLMService]] = {
    "resilient": GeminiLiveStage,
    "stock": GeminiLiveLLMService,
}


class Speaker(FrameProcessor):
    """Plays the bot's audio on a simulated speaker and remembers when each chunk played."""

    def __init__(self) -> None:
        super().__init__(name="speaker")
        self.answer = -1
        self.played: list[list[tuple[float, float]]] = []
        self.end = 0.0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame) and self.answer >= 0:
            now = time.monotonic()
            start = max(now, self.end)
            self.end = start + len(frame.audio) / 2 / frame.sample_rate
            self.played[self.answer].append((start, self.end))
        await self.push_frame(frame, direction)

    def heard(self, answer: int) -> bool:
        """Whether any of that answer has played."""
        return bool(self.played[answer])

    def next_answer(self) -> None:
        self.answer += 1
        self.played.append([])


@dataclass
class Trial:
    """What one run of the conversation measured (seconds)."""

    service: str
    fault: str
    recovered: bool = False
    asks: int = 0
    cut: list[float] = field(default_factory=list)
    silence: list[float] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return max(c + s for c, s in zip(self.cut, self.silence, strict=True))


async def reached(predicate: Callable[[], Any], what: str, within: float) -> bool:
    """Whether ``predicate()`` came true within ``within`` seconds (not coming true is normal
    here: the simulated user then asks again)."""
    try:
        await until(predicate, what, within=within, poll=POLL_S)
    except AssertionError:
        return False
    return True


class Control:
    """The emulator's control API: which conversations are live, and faults to inject."""

    def __init__(self, emu: Running) -> None:
        self._http = httpx.AsyncClient(
            base_url=emu.base_url,
            verify=ssl.create_default_context(cafile=str(emu.certs.ca)),
            timeout=10.0,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def live_conversations(self) -> set[str]:
        response = await self._http.get("/emulator/sessions")
        response.raise_for_status()
        return {s["conversation_id"] for s in response.json() if s["open"] and s["config"]}

    async def strike(self, conversation: str, fault: str) -> None:
        if fault == "outage":
            await self._post("/emulator/faults", {"refuse_for_s": OUTAGE_S})
        if fault == "goaway":
            await self._post(
                f"/emulator/sessions/{conversation}/goaway", {"time_left_s": GOAWAY_TIME_LEFT_S}
            )
        elif fault in ("drop", "outage"):
            await self._post(f"/emulator/sessions/{conversation}/drop", {})

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        response = await self._http.post(path, json=body)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text}")


def takes_input(llm: GeminiLiveLLMService) -> bool:
    """Whether the service sends what it is given now (rather than dropping or queueing it)."""
    if isinstance(llm, GeminiLiveStage):
        return llm.status.ready
    # Pipecat's own service has no public signal; it drops input until this is set.
    return bool(llm._ready_for_realtime_input)


def make_service(name: str, emu: Running) -> GeminiLiveLLMService:
    return SERVICES[name](
        api_key="bench-key",
        settings=GeminiLiveLLMService.Settings(model=MODEL),
        http_options=http_options(emu.base_url, emu.certs.ca),
    )


async def run_trial(
    control: Control, emu: Running, service: str, fault: str, durations: list[float]
) -> Trial:
    result = Trial(service, fault)
    llm = make_service(service, emu)
    speaker = Speaker()
    aggregators = LLMContextAggregatorPair(LLMContext())
    worker = PipelineWorker(
        Pipeline([aggregators.user(), llm, speaker, aggregators.assistant()]),
        params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=24000),
        enable_rtvi=False,
        idle_timeout_secs=None,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    before = await control.live_conversations()
    task = asyncio.create_task(runner.run())
    try:
        await worker.queue_frame(LLMRunFrame())
        new: set[str] = set()

        async def started() -> bool:
            new.update(await control.live_conversations() - before)
            return bool(new) and takes_input(llm)

        try:
            await until_async(started, "the session to start", READY_TIMEOUT_S, poll=POLL_S)
        except AssertionError:
            raise RuntimeError(f"{service}: the session did not start") from None
        (conv_id,) = new
        for k, question in enumerate(QUESTIONS):
            speaker.next_answer()
            answered = False
            for _ in range(MAX_ASKS):
                result.asks += 1
                await worker.queue_frame(InputTextRawFrame(text=question))
                heard = functools.partial(speaker.heard, k)
                if await reached(heard, f"answer {k + 1}", REASK_AFTER_S):
                    answered = True
                    break
            if not answered:
                return result
            if k == 0 and fault != "none":
                strike_at = speaker.played[0][0][0] + FAULT_AFTER_S
                await asyncio.sleep(max(0.0, strike_at - time.monotonic()))  # the fault's time
                await control.strike(conv_id, fault)
            # The user speaks once the bot has been quiet for a moment.
            await reached(lambda: time.monotonic() >= speaker.end + REACTION_S, "quiet", 30)
        result.recovered = True
        for k in range(2):
            heard_s = sum(end - start for start, end in speaker.played[k])
            result.cut.append(max(0.0, durations[k] - heard_s))
            result.silence.append(speaker.played[k + 1][0][0] - speaker.played[k][-1][1])
        return result
    finally:
        await worker.cancel(reason="trial finished")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


async def answer_durations() -> list[float]:
    """How long each answer is when heard in full, from the emulator's own synthesis."""
    out = []
    for text in ANSWERS:
        pcms = [
            await speech.Synthesizer.shared().synthesize(s) for s in speech.split_sentences(text)
        ]
        out.append(sum(len(p) for p in pcms) / 2 / speech.OUTPUT_RATE)
    return out


def summarize(trials: list[Trial]) -> list[str]:
    rows = []
    for fault in ("goaway", "drop", "outage", "none"):
        for service in SERVICES:
            mine = [t for t in trials if t.fault == fault and t.service == service]
            if not mine:
                continue
            ok = [t for t in mine if t.recovered]
            asks = sum(t.asks - len(QUESTIONS) for t in ok)

            def stat(values: list[float]) -> str:
                if not values:
                    return "–"
                return f"{statistics.median(values):.2f} / {max(values):.2f}"

            rows.append(
                f"| {fault} | {service} | {len(ok)}/{len(mine)} | {stat([t.gap for t in ok])} | "
                f"{stat([sum(t.cut) for t in ok])} | {stat([max(t.silence) for t in ok])} | "
                f"{asks} |"
            )
    return rows


async def main(trials: int, reference_trials: int) -> int:
    scenario = parse_scenario(
        {
            "rules": [
                {"when": q, "do": [{"say": a}]} for q, a in zip(QUESTIONS, ANSWERS, strict=True)
            ]
        }
    )
    durations = await answer_durations()  # also warms the synthesis cache
    results: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="resilience-bench-") as tmp:
        emu_config = Emulator(pace=1.0, connection_lifetime_s=None, scenario=scenario)
        async with running(emu_config, cert_dir=Path(tmp)) as emu:
            control = Control(emu)
            plan = [
                ("goaway", trials),
                ("drop", trials),
                ("outage", reference_trials),
                ("none", reference_trials),
            ]
            for fault, count in plan:
                for i in range(count):
                    for service in SERVICES:
                        trial = await run_trial(control, emu, service, fault, durations)
                        results.append(trial)
                        gap = f"{trial.gap:.2f}s" if trial.recovered else "not recovered"
                        print(f"{fault} {i + 1}/{count} {service}: gap {gap}", file=sys.stderr)
            await control.close()
    print(
        f"Gap in bot audio (speech cut + silence until the bot speaks again), in seconds, "
        f"median / worst over the recovered trials. Emulator at real time; goAway timeLeft "
        f"{GOAWAY_TIME_LEFT_S:g} s; user reacts after {REACTION_S:g} s.\n"
    )
    print("| fault | service | recovered | gap | speech cut | longest silence | re-asks |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(summarize(results)))
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resilience_bench")
    parser.add_argument("--trials", type=int, default=20, help="trials per fault and service")
    parser.add_argument(
        "--reference-trials",
        type=int,
        default=5,
        help="trials per service of the outage and fault-free conversations",
    )
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    return asyncio.run(main(args.trials, args.reference_trials))


if __name__ == "__main__":
    sys.exit(cli())
