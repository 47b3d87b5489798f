"""A Python stand-in for our browser page: talks to a bot over SmallWebRTC with aiortc.

It does what `bots/web/src/main.ts` does through `@pipecat-ai/client-js` and
`@pipecat-ai/small-webrtc-transport`:

1. `POST {base}/start` with `{"transport": "webrtc", "enableDefaultIceServers": false}` (plus an
   optional runner `body`), which answers `{"sessionId": ...}`;
2. a peer connection with no ICE servers and the transport's three transceivers in its order
   (audio sendrecv: the microphone out, the bot's voice in; camera video sendrecv; screen video
   sendonly), and the ordered data channel `"chat"`;
3. the offer `{sdp, type, pc_id, restart_pc}` to `POST {base}/sessions/{sessionId}/api/offer`, the
   path the JS transport derives from the start endpoint. aiortc gathers every candidate before
   the offer is made, so there is nothing to trickle with `PATCH`;
4. when the channel opens: the transport's `trackStatus` signalling messages, RTVI `client-ready`
   (`{"label": "rtvi-ai", "type": "client-ready", "data": {"version", "about"}}`), and a
   `"ping: <ms>"` keep-alive every second, which Pipecat uses to tell that the client is there;
5. a signalling `renegotiate` from the bot is answered with a fresh offer on the same peer
   connection (`pc_id` set, `restart_pc` false), as the JS transport does.

The microphone plays queued speech (a 16 kHz mono WAV resampled to 48 kHz for Opus) and silence in
between, paced in real time. Everything the bot sends back is recorded: each frame of its audio
(arrival time and RMS) and every RTVI message. Waits are bounded and `close()` always closes the
peer connection::

    async with WebRTCClient("http://127.0.0.1:7860") as client:
        await client.connect()
        ended = await client.say(Path("what_time_tokyo.wav"))
        await client.wait_for(lambda m: m.type == "bot-transcription", timeout=30)
        first = await client.wait_for_bot_audio(after=ended, timeout=30)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from testkit.lifecycle import AsyncResource
from testkit.loudness import SILENCE_RMS
from testkit.webrtc.audio import (
    AudioChunk,
    SpeechTrack,
    frame_rms,
    read_wav,
    resample,
)

RTVI_LABEL = "rtvi-ai"
RTVI_VERSION = "2.1.0"
"""The RTVI protocol version that `@pipecat-ai/client-js` announces in `client-ready`."""


class WebRTCClientError(RuntimeError):
    """The bot refused the session, or a step did not finish in time."""


@dataclass(frozen=True)
class RTVIMessage:
    """One RTVI message from the bot, as the JS transport hands it to the client."""

    type: str
    data: Any
    id: str | None
    at: float
    """`time.monotonic()` when it arrived."""
    raw: dict[str, Any] = field(repr=False)

    @property
    def text(self) -> str:
        """`data.text` when there is one (transcriptions, bot output), else ""."""
        if isinstance(self.data, dict) and isinstance(self.data.get("text"), str):
            return self.data["text"]
        return ""


@dataclass(frozen=True)
class HttpExchange:
    """A request the client made and the response it got, kept for later inspection."""

    method: str
    url: str
    status: int
    headers: dict[str, str]
    text: str


class WebRTCClient(AsyncResource):
    """One session with a bot over SmallWebRTC, as our page has it (`python -m bots`, or Pipecat's).

    Args:
        base_url: the runner, e.g. `http://127.0.0.1:7860`.
        body: the runner `body` sent with `/start`; the bot sees it as `runner_args.body`.
        video_transceivers: offer the camera and screen transceivers the JS transport always
            offers (no track on them). Off, the offer has the audio transceiver only.
        http_timeout: per HTTP request; `headers` go with every request (a session token).
    """

    def __init__(
        self,
        base_url: str,
        *,
        body: dict[str, Any] | None = None,
        video_transceivers: bool = True,
        http_timeout: float = 15.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.body = body
        self.video_transceivers = video_transceivers
        self.session_id: str | None = None
        self.pc_id: str | None = None
        self.start_response: dict[str, Any] | None = None
        self.http: list[HttpExchange] = []
        """Every request made and its response, in order (for leak checks)."""
        self.messages: list[RTVIMessage] = []
        """Every RTVI message received, in order."""
        self.signalling: list[dict[str, Any]] = []
        """Signalling messages received (`renegotiate`, `peerLeft`)."""
        self.unparsed: list[str | bytes] = []
        """Data-channel messages that were not JSON."""
        self.audio: list[AudioChunk] = []
        """Every frame of the bot's audio received, in order."""
        self.renegotiations = 0
        self.errors: list[str] = []
        """Failures in background tasks (renegotiation, audio reading)."""
        self.mic = SpeechTrack()
        self._http = httpx.AsyncClient(timeout=http_timeout, trust_env=False, headers=headers)
        self._pc: RTCPeerConnection | None = None
        self._dc: RTCDataChannel | None = None
        self._channel_open = asyncio.Event()
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._negotiating = asyncio.Lock()
        self._read_tracks: set[str] = set()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def connect(self, *, timeout: float = 30.0, wait_ready: bool = True) -> None:
        """Start a session, connect, send `client-ready`, and (by default) wait for `bot-ready`.

        Raises `WebRTCClientError` if the runner refuses or a step takes longer than `timeout`.
        On failure the peer connection is closed.
        """
        if self._pc is not None:
            raise WebRTCClientError("already connected")
        try:
            await asyncio.wait_for(self._connect(), timeout)
            if wait_ready:
                await self.wait_for(lambda m: m.type == "bot-ready", timeout)
        except TimeoutError:
            await self.close()
            raise WebRTCClientError(
                f"not connected within {timeout:.0f} s (session {self.session_id}, "
                f"messages {[m.type for m in self.messages]})"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def _connect(self) -> None:
        request: dict[str, Any] = {"transport": "webrtc", "enableDefaultIceServers": False}
        if self.body is not None:
            request["body"] = self.body
        response = await self._request("POST", "/start", json=request)
        self.start_response = response.json()
        session_id = self.start_response.get("sessionId") if self.start_response else None
        if not session_id:
            raise WebRTCClientError(f"/start gave no sessionId: {response.text[:500]}")
        self.session_id = str(session_id)

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc
        pc.addTransceiver(self.mic, direction="sendrecv")
        if self.video_transceivers:
            pc.addTransceiver("video", direction="sendrecv")
            pc.addTransceiver("video", direction="sendonly")
        pc.on("track", self._on_track)
        dc = pc.createDataChannel("chat", ordered=True)
        self._dc = dc
        dc.on("open", self._channel_open.set)
        dc.on("message", self._on_message)
        await self._negotiate(restart=False)
        await self._channel_open.wait()
        # What the JS transport sends once the channel opens, then client-js's client-ready.
        for index, enabled in ((0, True), (1, False), (2, False)):
            if index < len(pc.getTransceivers()):
                self.send({"type": "signalling", "message": self._track_status(index, enabled)})
        self.send_rtvi(
            "client-ready",
            {
                "version": RTVI_VERSION,
                "about": {"library": "testkit.webrtc", "library_version": "1"},
            },
        )
        self._spawn(self._keep_alive())

    async def close(self) -> None:
        """Stop the microphone, close the channel and the peer connection; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.mic.stop()
        if self._dc is not None:
            with contextlib.suppress(Exception):
                self._dc.close()
        if self._pc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pc.close(), 10)
        await self._http.aclose()

    async def renegotiate(self, *, timeout: float = 15.0) -> None:
        """Offer again on the same peer connection, as the JS transport does when the bot asks.

        The bot asks with a signalling `renegotiate` message, which this client answers by itself.
        """
        if self._pc is None or self._closed:
            raise WebRTCClientError("not connected")
        try:
            await asyncio.wait_for(self._negotiate(restart=False), timeout)
        except TimeoutError:
            raise WebRTCClientError(f"renegotiation took over {timeout:.0f} s") from None
        self.renegotiations += 1

    # ------------------------------------------------------------------ speaking

    def queue_speech(self, wav: Path | bytes, rate: int = 16000) -> asyncio.Future[float]:
        """Queue a WAV file (or raw 16-bit mono PCM at `rate`) after any queued speech.

        Returns a future for the `time.monotonic()` at which its last sample was sent.
        """
        if isinstance(wav, Path):
            pcm, rate = read_wav(wav)
        else:
            pcm = wav
        return self.mic.queue(resample(pcm, rate))

    async def say(self, wav: Path | bytes, rate: int = 16000, *, timeout: float = 60.0) -> float:
        """Say a WAV file (or PCM) and return when its last sample was sent (monotonic)."""
        future = self.queue_speech(wav, rate)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise WebRTCClientError(f"speech not sent within {timeout:.0f} s") from None

    # ------------------------------------------------------------------ sending

    def send(self, message: dict[str, Any]) -> None:
        """Send a JSON message on the data channel."""
        if self._dc is None or self._dc.readyState != "open":
            raise WebRTCClientError("the data channel is not open")
        self._dc.send(json.dumps(message))

    def send_rtvi(self, type_: str, data: Any = None) -> None:
        """Send an RTVI message (`client-ready`, `send-text`, `disconnect-bot`, ...)."""
        message: dict[str, Any] = {"label": RTVI_LABEL, "type": type_, "id": uuid.uuid4().hex[:8]}
        if data is not None:
            message["data"] = data
        self.send(message)

    # ------------------------------------------------------------------ what came back

    async def wait_for(
        self, predicate: Callable[[RTVIMessage], object], timeout: float
    ) -> RTVIMessage:
        """The first RTVI message (already received or still to come) that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        seen = 0
        async with self._changed:
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WebRTCClientError(
                        f"no matching RTVI message within {timeout:.0f} s; got {self.summary()}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    def of_type(self, *types: str) -> list[RTVIMessage]:
        """The messages of these types, in order."""
        return [m for m in self.messages if m.type in types]

    def summary(self, limit: int = 60) -> list[str]:
        """The last messages as short strings, for assertion messages."""
        out = []
        for m in self.messages[-limit:]:
            data = json.dumps(m.data, default=str) if m.data is not None else ""
            out.append(f"{m.type} {data[:120]}")
        return out

    def bot_audio_seconds(self, threshold: float = SILENCE_RMS, *, since: float = 0.0) -> float:
        """Seconds of bot audio louder than `threshold` (RMS) that arrived after `since`."""
        return sum(c.seconds for c in self.audio if c.at >= since and c.rms > threshold)

    def first_audio_after(self, t: float, threshold: float = SILENCE_RMS) -> float | None:
        """Arrival time (monotonic) of the first bot audio above `threshold` at or after `t`."""
        for chunk in self.audio:
            if chunk.at >= t and chunk.rms > threshold:
                return chunk.at
        return None

    async def wait_for_bot_audio(
        self, *, after: float, timeout: float, threshold: float = SILENCE_RMS
    ) -> float:
        """Wait for bot audio above `threshold` arriving after `after`; returns its arrival."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while (first := self.first_audio_after(after, threshold)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WebRTCClientError(
                        f"no bot audio within {timeout:.0f} s ({len(self.audio)} frames, all "
                        f"silent); messages {self.summary(20)}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
            return first

    async def wait_for_bot_quiet(
        self, *, quiet_for: float, timeout: float, threshold: float = SILENCE_RMS
    ) -> float:
        """Wait until `quiet_for` seconds of received bot audio in a row are below `threshold`.

        Counts received frames, not wall time, so it needs the audio to keep flowing (Pipecat
        sends silence between turns). Returns the arrival time of the last loud frame (or 0).
        """
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                quiet = 0.0
                last_loud = 0.0
                for chunk in reversed(self.audio):
                    if chunk.rms > threshold:
                        last_loud = chunk.at
                        break
                    quiet += chunk.seconds
                if quiet >= quiet_for:
                    return last_loud
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WebRTCClientError(
                        f"the bot was not quiet for {quiet_for} s in {timeout} s"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    # ------------------------------------------------------------------ internals

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.base_url}{path}"
        response = await self._http.request(method, url, **kwargs)
        self.http.append(
            HttpExchange(method, url, response.status_code, dict(response.headers), response.text)
        )
        if response.status_code >= 400:
            raise WebRTCClientError(
                f"{method} {path}: {response.status_code} {response.text[:500]}"
            )
        return response

    async def _negotiate(self, *, restart: bool) -> None:
        """Offer, POST it as the JS transport does, and apply the answer."""
        pc = self._pc
        assert pc is not None and self.session_id is not None
        async with self._negotiating:
            await pc.setLocalDescription(await pc.createOffer())
            local = pc.localDescription
            response = await self._request(
                "POST",
                f"/sessions/{self.session_id}/api/offer",
                json={
                    "sdp": local.sdp,
                    "type": local.type,
                    "pc_id": self.pc_id,
                    "restart_pc": restart,
                },
            )
            answer = response.json()
            if not isinstance(answer, dict) or "sdp" not in answer:
                raise WebRTCClientError(f"the offer got no answer: {response.text[:500]}")
            self.pc_id = answer.get("pc_id") or self.pc_id
            await pc.setRemoteDescription(
                RTCSessionDescription(sdp=answer["sdp"], type=answer["type"])
            )

    @staticmethod
    def _track_status(index: int, enabled: bool) -> dict[str, Any]:
        return {"type": "trackStatus", "receiver_index": index, "enabled": enabled}

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _keep_alive(self) -> None:
        """`ping: <ms>` every second while the channel is open, as the JS transport does."""
        while self._dc is not None and self._dc.readyState == "open":
            try:
                self._dc.send(f"ping: {int(time.time() * 1000)}")
            except Exception as exc:  # the transport went away under the channel
                self.errors.append(f"keep-alive: {exc!r}")
                return
            await asyncio.sleep(1.0)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and track.id not in self._read_tracks:
            self._read_tracks.add(track.id)
            self._spawn(self._read_audio(track))

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                self.audio.append(
                    AudioChunk(
                        time.monotonic(), frame.samples / frame.sample_rate, frame_rms(frame)
                    )
                )
                await self._notify()
        except MediaStreamError:
            return
        except Exception as exc:
            self.errors.append(f"reading the bot's audio: {exc!r}")

    def _on_message(self, message: str | bytes) -> None:
        at = time.monotonic()
        try:
            parsed = json.loads(message)
        except (ValueError, TypeError):
            self.unparsed.append(message)
            return
        if not isinstance(parsed, dict):
            self.unparsed.append(message)
            return
        if parsed.get("type") == "signalling":
            inner = parsed.get("message") or {}
            self.signalling.append(inner)
            if inner.get("type") == "renegotiate" and not self._closed:
                self._spawn(self._renegotiate())
        elif parsed.get("label") == RTVI_LABEL:
            self.messages.append(
                RTVIMessage(
                    type=str(parsed.get("type")),
                    data=parsed.get("data"),
                    id=parsed.get("id"),
                    at=at,
                    raw=parsed,
                )
            )
        else:
            self.unparsed.append(message)
        if not self._closed:
            self._spawn(self._notify())

    async def _renegotiate(self) -> None:
        try:
            await self.renegotiate()
        except Exception as exc:
            self.errors.append(f"renegotiation: {exc!r}")
        await self._notify()
