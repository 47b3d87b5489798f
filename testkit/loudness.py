"""The one threshold for "this audio is sounding" in what a test hears of the bot.

The WebRTC client (`testkit.webrtc`) and the page (`testkit.browser`) measure loudness as an RMS
with full scale 1.0, as decoded Opus and WebAudio give it. The level is the one the bot itself
calls speech: `observers.loudness.SPEECH_RMS` (300 of 32768 in 16-bit samples, about -40 dBFS),
rounded to 0.01.
"""

from __future__ import annotations

SILENCE_RMS = 0.01
"""RMS (full scale 1.0) above which a frame of the bot's or the microphone's audio counts as
sound; below it, as silence."""
