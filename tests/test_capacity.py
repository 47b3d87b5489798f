"""Load shedding as a user meets it: a full bot refuses the next session and keeps the running ones.

`python -m bots` with `MAX_SESSIONS=2`, real aiortc sessions over SmallWebRTC, its own emulator.
`python -m bench.load` shows the same at N = cap + 5 with latencies and audio health.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from testkit.bot_server import bot_server
from testkit.waiting import wait_for
from testkit.webrtc.client import WebRTCClient, WebRTCClientError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

AUDIO = Path(__file__).parent / "fixtures" / "audio"
TURN_TIMEOUT = 60.0
PRODUCT = re.compile(r"\b84\b")


async def answered(client: WebRTCClient) -> str:
    """Ask 12 times 7 and wait for the spoken answer's transcription."""
    started = time.monotonic()
    ended = await client.say(AUDIO / "multiply.wav")
    await client.wait_for_bot_audio(after=ended, timeout=TURN_TIMEOUT)
    said = await client.wait_for(
        lambda m: (
            m.at >= started and m.type == "bot-transcription" and bool(PRODUCT.search(m.text))
        ),
        TURN_TIMEOUT,
    )
    return said.text


async def test_a_full_bot_refuses_the_next_session_with_503_and_the_running_ones_still_answer(
    tmp_path: Path,
) -> None:
    env = {"MAX_SESSIONS": "2", "MAX_SESSIONS_PER_CLIENT": "5"}
    with bot_server("assistant", tmp_path, **env) as bot:
        async with WebRTCClient(bot.base_url) as first, WebRTCClient(bot.base_url) as second:
            await first.connect()
            await second.connect()

            third = WebRTCClient(bot.base_url)
            with pytest.raises(WebRTCClientError, match="503"):
                await third.connect()
            refused = third.http[-1]
            assert refused.status == 503, refused
            assert int(refused.headers["retry-after"]) > 0, refused.headers
            assert "busy" in refused.text.lower(), refused
            async with httpx.AsyncClient(trust_env=False) as http:
                ready = await http.get(f"{bot.base_url}/readyz")
            assert ready.status_code == 503 and "full" in ready.json()["reason"], ready.text

            assert PRODUCT.search(await answered(first)), first.summary()
            assert PRODUCT.search(await answered(second)), second.summary()
            assert not first.errors and not second.errors, (first.errors, second.errors)

        # Both users left: their slots are free again.
        def ready() -> bool:
            return httpx.get(f"{bot.base_url}/readyz", timeout=5).status_code == 200

        wait_for(ready, "the bot to be ready again", 60)
        async with WebRTCClient(bot.base_url) as later:
            await later.connect()
            assert PRODUCT.search(await answered(later)), later.summary()
