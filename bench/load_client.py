"""`python -m bench.load_client`: one worker process of `bench.load`, holding K real sessions.

Each session connects the way our page does (`testkit.webrtc.WebRTCClient`: `/start`, an aiortc
offer with the page's transceivers, RTVI `client-ready`), lets the greeting pass, then until the
deadline says a spoken question in real time, waits for the first bot audio, waits for the answer
to end, and pauses. It prints one JSON line: per session, the turn latencies (end of the user's
audio sent → first bot audio received), the gaps in the bot's audio stream, and what went wrong.
Workers are processes of their own so that the clients never share the bot's event loop or its
CPU accounting.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from observers.loudness import SPEECH_RMS, rms
from testkit.webrtc.audio import read_wav
from testkit.webrtc.client import WebRTCClient, WebRTCClientError

GAP_S = 0.060
"""Between two frames of the bot's audio (20 ms each, silence included), more than this is a gap
a listener hears."""
LATE_S = 0.040
"""A frame arriving this long after the one before it is late (the jitter buffer may hide it)."""
TURN_TIMEOUT_S = 20.0
QUIET_S = 0.8
"""The bot has finished answering once this much of its audio in a row is silent."""


@dataclass
class SessionResult:
    """What one session saw; the bench adds these up per step."""

    connected: bool = False
    refused: int | None = None
    """The HTTP status of a refused `/start` (503 full, 429 per client), else None."""
    retry_after: str | None = None
    connected_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    audio_s: float = 0.0
    gaps: int = 0
    late: int = 0
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)


def trailing_silence_s(wav: Path) -> float:
    """How long the recording is silent after its last word: the user's speech ends that long
    before its last sample is sent."""
    pcm, rate = read_wav(wav)
    frame = rate // 50 * 2  # 20 ms of 16-bit samples
    end = len(pcm) - len(pcm) % frame
    while end > 0 and rms(pcm[end - frame : end]) <= SPEECH_RMS:
        end -= frame
    return (len(pcm) - end) / 2 / rate


def audio_health(arrivals: list[float]) -> tuple[int, int]:
    """(gaps, late frames) in the arrival times of consecutive audio frames."""
    gaps = late = 0
    for before, after in itertools.pairwise(arrivals):
        step = after - before
        if step > GAP_S:
            gaps += 1
        elif step > LATE_S:
            late += 1
    return gaps, late


async def converse(base: str, wav: Path, deadline: float, result: SessionResult) -> None:
    tail_s = trailing_silence_s(wav)
    client = WebRTCClient(base)
    try:
        try:
            await client.connect(timeout=30.0)
        except WebRTCClientError as exc:
            refusal = next((h for h in reversed(client.http) if h.status >= 400), None)
            if refusal is not None:
                result.refused = refusal.status
                result.retry_after = refusal.headers.get("retry-after")
            else:
                result.errors.append(str(exc)[:300])
            return
        result.connected = True
        started = time.monotonic()
        await client.wait_for_bot_quiet(quiet_for=QUIET_S, timeout=TURN_TIMEOUT_S)
        measured_from = len(client.audio)
        while time.monotonic() < deadline:
            speech_ended = await client.say(wav) - tail_s
            first = await client.wait_for_bot_audio(after=speech_ended, timeout=TURN_TIMEOUT_S)
            result.latencies.append(round(first - speech_ended, 4))
            await client.wait_for_bot_quiet(quiet_for=QUIET_S, timeout=TURN_TIMEOUT_S)
            await asyncio.sleep(random.uniform(0.3, 1.2))  # the user thinks before the next one
        frames = client.audio[measured_from:]
        result.audio_s = round(sum(c.seconds for c in frames), 2)
        result.gaps, result.late = audio_health([c.at for c in frames])
        result.connected_s = round(time.monotonic() - started, 2)
    except WebRTCClientError as exc:
        result.errors.append(str(exc)[:300])
    finally:
        result.reconnects = len(client.of_type("service-reconnecting"))
        result.errors += [
            f"rtvi error: {json.dumps(m.data)[:200]}" for m in client.of_type("error")
        ]
        result.errors += client.errors
        await client.close()


async def run(base: str, wav: Path, sessions: int, secs: float, stagger: float) -> list[dict]:
    deadline = time.monotonic() + secs
    results = [SessionResult() for _ in range(sessions)]

    async def one(index: int) -> None:
        await asyncio.sleep(stagger * index)
        await converse(base, wav, deadline, results[index])

    await asyncio.gather(*(one(i) for i in range(sessions)))
    return [asdict(r) for r in results]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_client")
    parser.add_argument("--base", required=True, help="the bot, e.g. http://127.0.0.1:7860")
    parser.add_argument("--wav", type=Path, required=True, help="what each user says")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--secs", type=float, default=30.0, help="how long to keep talking")
    parser.add_argument("--stagger", type=float, default=0.25, help="seconds between starts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    out = asyncio.run(run(args.base, args.wav, args.sessions, args.secs, args.stagger))
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
