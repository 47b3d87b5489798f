"""Inbound media of one connection: microphone audio into turns, camera or screen frames into sight.

Audio is resampled to 16 kHz and goes through the server-side VAD, which starts and ends user
turns (or, with automatic detection disabled, `activityStart`/`activityEnd` bracket them). Gemini
recognizes speech as it streams, so its transcript is ready when the turn ends; Whisper cannot
stream, so it starts as soon as the words have ended (a short tail of quiet after the last speech
window, `emulator.speech.vad._EARLY_TAIL_MS`), while the VAD waits out the rest of the
end-of-turn silence. When the turn ends with exactly that audio the early transcript is used, and
Whisper's time is off the response latency; when the user speaks again first, the stale pass is
cancelled if it has not started.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from typing import Any

from emulator.brain import ImageInfo
from emulator.session.channel import CloseSession
from emulator.session.context import AudioTurn, Context
from emulator.session.timing import TurnTiming, audio_digest
from emulator.session.turns import Turns
from emulator.speech import INPUT_RATE, PcmResampler, Transcriber, TurnDetector
from emulator.wire import WireError, decode_bytes, parse_rate

VIDEO_FRAMES_KEPT = 600
SPEECH_SEGMENTS_KEPT = 200


def _image_info(image: bytes) -> ImageInfo | None:
    """Size and mean colour of a frame, enough for the brain to say what it sees."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(image)) as img:
            width, height = img.size
            small = img.convert("RGB").resize((8, 8))
            pixels = list(small.getdata())
    except Exception:
        return None
    n = len(pixels) or 1
    r, g, b = (sum(p[i] for p in pixels) // n for i in range(3))
    return ImageInfo(width=width, height=height, mean_rgb=(r, g, b))


class Media:
    """What the user's microphone and camera have sent on one connection."""

    def __init__(self, ctx: Context, turns: Turns) -> None:
        self._ctx = ctx
        self._turns = turns
        self.audio_in_s = 0.0
        self.user_speaking = False
        self.video_frames: deque[dict[str, Any]] = deque(maxlen=VIDEO_FRAMES_KEPT)
        self.speech_segments: deque[dict[str, float | None]] = deque(maxlen=SPEECH_SEGMENTS_KEPT)
        self._vad: TurnDetector | None = None
        self._resampler: PcmResampler | None = None
        self._resampler_rate = 0
        self._manual_audio: bytearray | None = None  # the turn that activityStart began
        self._early_audio: bytes | None = None
        self._early_text: asyncio.Future[str] | None = None
        self._early_timing: TurnTiming | None = None
        self._speech_seen = 0  # the VAD's count of speech windows when the last chunk was taken
        self._last_speech: tuple[str, float] | None = None  # (digest, received at) of that chunk

    # ------------------------------------------------------------------ audio

    async def audio(self, blob: dict[str, Any]) -> None:
        """One chunk of microphone audio (`audio/pcm`, any rate)."""
        received_at = time.time()
        self._ctx.frames["audio"] += 1
        rate = parse_rate(blob.get("mime_type"))
        wire = pcm = decode_bytes(blob.get("data", ""))
        if len(pcm) % 2:
            raise WireError("Invalid audio: 16-bit PCM needs an even number of bytes.")
        if rate != INPUT_RATE:
            if self._resampler is None or self._resampler_rate != rate:
                self._resampler = PcmResampler(rate, INPUT_RATE)
                self._resampler_rate = rate
            pcm = self._resampler.process(pcm)
        await self._take(pcm, wire, received_at)

    def activity_start(self) -> None:
        """`activityStart`: the user's turn begins (automatic detection disabled)."""
        self._manual_audio = bytearray()
        self._speech_started()

    async def activity_end(self) -> None:
        """`activityEnd`: the turn that `activityStart` began is over."""
        await self._drain()
        audio = bytes(self._manual_audio or b"")
        self._manual_audio = None
        self._speech_ended()
        if audio:
            timing = TurnTiming("audio", early_transcript=False)
            timing.mark("turn_ended")
            await self._ctx.events.put(AudioTurn(audio, timing=timing))

    async def stream_end(self) -> None:
        """`audioStreamEnd`: the microphone paused; a turn under way ends with what was heard."""
        await self._drain()
        if self._vad is None:
            return
        event = self._vad.flush()
        if event is not None and event.kind == "ended":
            self._speech_ended()
            await self._turn_ended(event.transcript_audio)

    async def _drain(self) -> None:
        """Take the audio a resampler still holds: the stream paused (or the turn ended)."""
        if self._resampler is None:
            return
        tail = self._resampler.process(b"", last=True)
        self._resampler, self._resampler_rate = None, 0
        if tail:
            await self._take(tail)

    async def _take(self, pcm: bytes, wire: bytes = b"", received_at: float = 0.0) -> None:
        """Count 16 kHz input audio and hand it to VAD, or to the turn that activityStart began.

        `wire` is the chunk as the client sent it and `received_at` when it came: kept for the
        chunk that holds the latest speech, the start of the turn's timing.
        """
        self.audio_in_s += len(pcm) / 2 / INPUT_RATE
        config = self._ctx.config
        if config.vad_disabled:
            if self._manual_audio is not None:
                self._manual_audio.extend(pcm)
                self._check_buffered(len(self._manual_audio))
            return
        if self._vad is None:
            self._vad = TurnDetector(
                silence_ms=config.silence_ms,
                prefix_padding_ms=config.prefix_padding_ms,
                start_sensitivity=config.start_sensitivity,
                end_sensitivity=config.end_sensitivity,
            )
        ended = False
        events = self._vad.feed(pcm)
        if self._vad.speech_windows != self._speech_seen:
            self._speech_seen = self._vad.speech_windows
            if wire:
                self._last_speech = (audio_digest(wire), received_at)
        for event in events:
            if event.kind == "started":
                self._speech_started()
            else:
                ended = True
                self._speech_ended()
                await self._turn_ended(event.transcript_audio)
        self._check_buffered(self._vad.buffered_bytes)
        if not ended and self._ctx.options.heard_as is None:
            self._transcribe_early()

    def _check_buffered(self, held: int) -> None:
        """Close the connection once one turn holds more audio than the server allows."""
        limit_s = self._ctx.options.max_turn_audio_s
        if held > limit_s * INPUT_RATE * 2:  # 16-bit samples
            raise CloseSession(
                1009,
                f"More than {limit_s:g} s of audio in one turn: end the turn (activityEnd) "
                "or pause the microphone (audioStreamEnd).",
            )

    def _transcribe_early(self) -> None:
        """Start transcribing the utterance while the end-of-turn silence is waited out."""
        assert self._vad is not None
        audio = self._vad.paused_utterance()
        if audio is None or audio == self._early_audio:
            return
        if self._early_text is not None:
            self._early_text.cancel()  # the user spoke again: only a pass not yet begun stops
        self._early_audio = audio
        self._early_timing = TurnTiming("audio", early_transcript=True)
        self._early_timing.mark("transcribe_started")
        self._early_text = asyncio.ensure_future(_transcribe(audio, self._early_timing))

    async def _turn_ended(self, audio: bytes) -> None:
        """Hand the utterance on, with its early transcript when that was of exactly this audio."""
        matches = audio == self._early_audio
        early = self._early_text if matches else None
        timing = (self._early_timing if matches else None) or TurnTiming(
            "audio", early_transcript=False
        )
        self._early_audio, self._early_text, self._early_timing = None, None, None
        if self._last_speech is not None:
            timing.speech_digest, at = self._last_speech
            timing.mark("speech_received", at)
        timing.mark("turn_ended")
        await self._ctx.events.put(AudioTurn(audio, early, timing))

    def _speech_started(self) -> None:
        if not self.user_speaking:
            self.speech_segments.append({"start": round(time.time(), 3), "end": None})
        self.user_speaking = True
        self._ctx.user_quiet.clear()
        self._turns.barge_in()

    def _speech_ended(self) -> None:
        if self.user_speaking and self.speech_segments:
            self.speech_segments[-1]["end"] = round(time.time(), 3)
        self.user_speaking = False
        self._ctx.user_quiet.set()

    # ------------------------------------------------------------------ video

    def video(self, blob: dict[str, Any]) -> None:
        """One camera or screen frame (JPEG, PNG or WebP): what the brain will describe."""
        self._ctx.frames["video"] += 1
        mime = str(blob.get("mime_type") or "image/jpeg")
        if mime not in ("image/jpeg", "image/png", "image/webp"):
            raise WireError(f"Unsupported video MIME type {mime!r}: send JPEG frames.")
        data = decode_bytes(blob.get("data", ""))
        info = _image_info(data)
        if info is None:
            raise WireError(f"Invalid video frame: the data is not a decodable {mime} image.")
        self._ctx.image = info
        self.video_frames.append(
            {
                "t": round(time.time(), 3),
                "bytes": len(data),
                "width": info.width,
                "height": info.height,
                "during_speech": self.user_speaking,
            }
        )


async def _transcribe(audio: bytes, timing: TurnTiming) -> str:
    """Whisper on one utterance, the moment its transcript is ready stamped on the turn's timing."""
    text = await Transcriber.shared().transcribe(audio)
    timing.mark("transcribed")
    return text
