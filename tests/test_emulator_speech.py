"""Tests for the emulator's offline speech: resampling, sentences, Whisper, Piper and Silero VAD.

These run the real models on the real speech fixtures in ``tests/fixtures/audio`` (16 kHz mono WAV,
transcripts in ``transcripts.tsv``), because the point of the module is that the emulator
hears and speaks like the real service; mocks would prove nothing about that.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.speech import (
    INPUT_RATE,
    OUTPUT_RATE,
    PcmResampler,
    SentenceCache,
    SpeechEvent,
    Synthesizer,
    Transcriber,
    TurnDetector,
    resample_pcm16,
    silero,
    split_sentences,
)
from observers.loudness import SPEECH_RMS, rms

pytestmark = pytest.mark.speech

SILENCE_1S = b"\x00\x00" * INPUT_RATE


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def audio_dir() -> Path:
    """The speech fixtures, kept in the repository."""
    path = Path(__file__).resolve().parent / "fixtures" / "audio"
    assert path.is_dir(), f"speech fixtures not found at {path}"
    return path


@cache
def read_fixture(name: str) -> bytes:
    """PCM16 bytes of a fixture, checking it is in the format the emulator works in."""
    with wave.open(str(audio_dir() / name)) as wav:
        assert wav.getframerate() == INPUT_RATE
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        return wav.readframes(wav.getnframes())


@cache
def transcripts() -> dict[str, str]:
    """Fixture name -> what is said in it."""
    rows = (audio_dir() / "transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {name: text for name, _, text in (row.partition("\t") for row in rows if row)}


def seconds(pcm: bytes, rate: int = INPUT_RATE) -> float:
    return len(pcm) / (2 * rate)


def speech_extent(pcm: bytes) -> tuple[float, float]:
    """First and last moment of audible sound, from 10 ms frame energy (independent of Silero)."""
    frame = INPUT_RATE // 100 * 2  # 10 ms of PCM16
    frames = (pcm[i : i + frame] for i in range(0, len(pcm) - frame + 1, frame))
    loud = [i for i, chunk in enumerate(frames) if rms(chunk) > SPEECH_RMS]
    assert loud, "fixture has no audible sound"
    return loud[0] / 100, (loud[-1] + 1) / 100


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------


def test_one_second_at_22050_hz_resamples_to_about_24000_samples() -> None:
    pcm = b"\x00\x00" * 22050
    out = resample_pcm16(pcm, 22050, 24000)
    assert abs(len(out) // 2 - 24000) <= 2
    assert len(out) % 2 == 0


def test_resampling_between_equal_rates_returns_the_same_audio() -> None:
    pcm = read_fixture("hello.wav")
    assert resample_pcm16(pcm, INPUT_RATE, INPUT_RATE) == pcm


def test_resampling_keeps_a_tone_at_its_frequency() -> None:
    t = np.arange(INPUT_RATE) / INPUT_RATE
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype("<i2").tobytes()
    out = np.frombuffer(resample_pcm16(tone, INPUT_RATE, OUTPUT_RATE), dtype="<i2")
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    peak_hz = np.argmax(spectrum) * OUTPUT_RATE / len(out)
    assert abs(peak_hz - 440) < 2
    assert 9000 < np.max(np.abs(out)) < 11000


def test_resampling_refuses_half_a_sample() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        resample_pcm16(b"\x00\x00\x00", 16000, 24000)


def test_streaming_resampler_fed_odd_chunks_matches_resampling_the_whole_buffer() -> None:
    pcm = read_fixture("what_time_tokyo.wav")
    whole = np.frombuffer(resample_pcm16(pcm, INPUT_RATE, OUTPUT_RATE), dtype="<i2")
    resampler = PcmResampler(INPUT_RATE, OUTPUT_RATE)
    parts = [resampler.process(pcm[i : i + 1001]) for i in range(0, len(pcm), 1001)]
    parts.append(resampler.process(b"", last=True))
    assert all(len(part) % 2 == 0 for part in parts)
    streamed = np.frombuffer(b"".join(parts), dtype="<i2")
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    assert np.max(np.abs(streamed[:n].astype(int) - whole[:n].astype(int))) <= 4


def test_streaming_resampler_between_equal_rates_passes_bytes_through_whole_samples() -> None:
    resampler = PcmResampler(INPUT_RATE, INPUT_RATE)
    assert resampler.process(b"\x01\x02\x03") == b"\x01\x02"
    assert resampler.process(b"\x04") == b"\x03\x04"


# --------------------------------------------------------------------------------------------
# Sentence splitting
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you?", ["Hello there. ", "How are you?"]),
        ("Wow!  Really?\n\nYes.", ["Wow! ", "Really? ", "Yes."]),
        ("no punctuation at all", ["no punctuation at all"]),
        ("  padded sentence.  ", ["padded sentence."]),
        ("Pi is 3.14 exactly. Next.", ["Pi is 3.14 exactly. ", "Next."]),
        ("We meet at 10:30. Bring tea.", ["We meet at 10:30. ", "Bring tea."]),
        ('She said "stop." Then left.', ['She said "stop." ', "Then left."]),
        ("Wait... what?!", ["Wait... ", "what?!"]),
        ("Trailing words without an end", ["Trailing words without an end"]),
        ("", []),
        (" \n\t ", []),
    ],
)
def test_text_is_split_into_sentences_that_keep_their_punctuation(
    text: str, expected: list[str]
) -> None:
    assert split_sentences(text) == expected


SENTENCE_TEXT = st.text(
    alphabet=st.sampled_from([*"ab3 .!?:\n\t\"')…", "\u00a0", "\u2003"]), max_size=60
)


@given(SENTENCE_TEXT)
def test_joined_sentences_equal_the_text_with_whitespace_between_sentences_collapsed(
    text: str,
) -> None:
    pieces = split_sentences(text)
    # Oracle written independently of the module: any whitespace run that follows terminal
    # punctuation (and closing quotes/brackets) becomes one space; the ends are stripped.
    expected = re.sub(r"([.!?…]+[\"'”’)\]»]*)\s+", r"\1 ", text.strip())
    assert "".join(pieces) == expected


@given(SENTENCE_TEXT)
def test_sentences_are_never_empty_and_only_the_last_lacks_a_trailing_space(text: str) -> None:
    pieces = split_sentences(text)
    assert all(piece.strip() for piece in pieces)
    for piece in pieces[:-1]:
        assert re.search(r"[.!?…][\"'”’)\]»]*$", piece[:-1]), piece
        assert piece.endswith(" ") and not piece[:-1][-1].isspace()
    if pieces:
        assert pieces[-1] == pieces[-1].rstrip()
        assert pieces[0] == pieces[0].lstrip()


@given(SENTENCE_TEXT)
def test_no_sentence_contains_a_sentence_boundary_inside_it(text: str) -> None:
    for piece in split_sentences(text):
        assert not re.search(r"[.!?…][\"'”’)\]»]*\s", piece.rstrip(" ")), piece


@given(st.text(alphabet=st.characters(exclude_characters=".!?…"), max_size=40))
def test_text_without_terminal_punctuation_is_one_sentence(text: str) -> None:
    assert split_sentences(text) == ([text.strip()] if text.strip() else [])


# --------------------------------------------------------------------------------------------
# Transcriber
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    instance = Transcriber.shared()
    instance.warm_up()
    return instance


@pytest.fixture(scope="module")
def synthesizer() -> Synthesizer:
    instance = Synthesizer.shared()
    instance.warm_up()
    return instance


async def test_a_short_question_is_transcribed_to_its_words(transcriber: Transcriber) -> None:
    text = await transcriber.transcribe(read_fixture("what_time_tokyo.wav"))
    assert "tokyo" in text.lower()
    assert "time" in text.lower()
    assert text == text.strip()


async def test_two_seconds_of_silence_transcribe_to_nothing(transcriber: Transcriber) -> None:
    assert await transcriber.transcribe(read_fixture("silence_2s.wav")) == ""


def test_near_silence_is_answered_without_running_whisper() -> None:
    # A model that cannot load proves the model is never asked.
    deaf = Transcriber(model_dir="/nonexistent/whisper")
    rng = np.random.default_rng(0)
    hiss = (rng.normal(0, 10, INPUT_RATE)).astype("<i2").tobytes()  # about -70 dBFS
    assert deaf.transcribe_sync(hiss) == ""
    assert deaf.transcribe_sync(read_fixture("silence_2s.wav")) == ""
    with pytest.raises(FileNotFoundError):
        deaf.transcribe_sync(read_fixture("hello.wav"))


async def test_audio_too_short_to_hold_a_word_transcribes_to_nothing(
    transcriber: Transcriber,
) -> None:
    pcm = read_fixture("hello.wav")
    start = int(speech_extent(pcm)[0] * INPUT_RATE) * 2
    assert await transcriber.transcribe(pcm[start : start + 2 * 800]) == ""  # 50 ms of speech
    assert await transcriber.transcribe(b"") == ""


async def test_concurrent_transcriptions_all_get_their_own_answers(
    transcriber: Transcriber,
) -> None:
    names = ["hello.wav", "what_time_tokyo.wav", "stop.wav"]
    texts = await asyncio.gather(*(transcriber.transcribe(read_fixture(n)) for n in names))
    assert "hello" in texts[0].lower()
    assert "tokyo" in texts[1].lower()
    assert "stop" in texts[2].lower()


async def test_transcription_leaves_the_event_loop_free(transcriber: Transcriber) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(transcriber.transcribe(read_fixture("weather_paris.wav")))
    ticks = 0

    def tick() -> None:
        """One loop iteration while the transcription runs; then the next one is scheduled."""
        nonlocal ticks
        if not task.done():
            ticks += 1
            loop.call_soon(tick)

    loop.call_soon(tick)
    text = await task
    assert "paris" in text.lower()
    # Had Whisper run on the loop thread, the task would finish before a single tick.
    assert ticks > 10


def test_the_shared_transcriber_is_one_instance_even_when_asked_from_many_threads() -> None:
    class FreshTranscriber(Transcriber):
        """A subclass has its own singleton, so this sees it being created."""

    barrier = threading.Barrier(8)

    def get() -> Transcriber:
        barrier.wait()
        return FreshTranscriber.shared()

    with ThreadPoolExecutor(8) as pool:
        instances = list(pool.map(lambda _: get(), range(8)))
    assert all(instance is instances[0] for instance in instances)
    assert isinstance(instances[0], FreshTranscriber)
    assert Transcriber.shared() is Transcriber.shared()
    assert Transcriber.shared() is not instances[0]


# --------------------------------------------------------------------------------------------
# Synthesizer
# --------------------------------------------------------------------------------------------


async def test_a_short_sentence_is_spoken_as_audible_24_khz_audio(
    synthesizer: Synthesizer,
) -> None:
    pcm = await synthesizer.synthesize("Hello, how can I help you today?")
    assert len(pcm) % 2 == 0
    assert 0.3 < seconds(pcm, OUTPUT_RATE) < 5.0
    assert rms(pcm) > 2 * SPEECH_RMS  # about -34 dBFS: spoken up, not murmured


async def test_a_repeated_sentence_comes_from_the_cache_byte_for_byte(
    synthesizer: Synthesizer,
) -> None:
    # Piper adds random noise, so only a cache gives identical bytes twice.
    first = await synthesizer.synthesize("The cache should remember this one.")
    second = await synthesizer.synthesize("The cache should remember this one.")
    assert first == second
    assert first


async def test_a_sentence_with_nothing_to_say_is_empty_audio(synthesizer: Synthesizer) -> None:
    assert await synthesizer.synthesize("   ") == b""


def test_the_cache_forgets_the_least_recently_used_sentence() -> None:
    cache = SentenceCache(2)
    # A voice that cannot load proves that every sentence below is served from the cache.
    synth = Synthesizer(model_path="/nonexistent/voice.onnx", cache=cache)
    cache.put("a", b"A")
    cache.put("b", b"B")
    assert cache.get("a") == b"A"  # "a" is now the most recent
    cache.put("c", b"C")
    assert cache.get("b") is None
    assert synth.synthesize_sync("a") == b"A"
    assert synth.synthesize_sync("c") == b"C"


async def test_synthesized_speech_is_understood_by_the_transcriber(
    synthesizer: Synthesizer, transcriber: Transcriber
) -> None:
    spoken = await synthesizer.synthesize("What is twelve times seven?")
    heard = await transcriber.transcribe(resample_pcm16(spoken, OUTPUT_RATE, INPUT_RATE))
    # Piper adds random noise to every synthesis, and now and then Whisper tiny.en hears the
    # number as "12th"; the number itself is what must come through.
    assert any(w in ("twelve", "twelfth") or w.startswith("12") for w in words(heard)), heard


# --------------------------------------------------------------------------------------------
# Turn detection
# --------------------------------------------------------------------------------------------


def test_a_phrase_followed_by_silence_is_one_turn_about_as_long_as_the_speech() -> None:
    pcm = read_fixture("what_time_tokyo.wav")
    detector = TurnDetector()
    events = detector.feed(pcm + SILENCE_1S)
    assert [event.kind for event in events] == ["started", "ended"]
    assert events[0].audio == b""
    start, end = speech_extent(pcm)
    speech = end - start
    heard = seconds(events[1].audio)
    # Prefix padding (0.3 s) and the short tail (0.2 s) are added; Silero's own lag is small.
    assert speech <= heard <= speech + 0.3 + 0.2 + 0.3
    assert not detector.speaking


def test_the_utterance_audio_is_the_input_audio_starting_with_the_prefix_padding() -> None:
    pcm = read_fixture("what_time_tokyo.wav")
    events = TurnDetector(prefix_padding_ms=300).feed(pcm + SILENCE_1S)
    audio = events[-1].audio
    offset = (pcm + SILENCE_1S).find(audio)
    assert offset >= 0, "utterance is not a contiguous slice of the input"
    start, _ = speech_extent(pcm)
    assert offset / (2 * INPUT_RATE) <= start  # the first syllable is inside


def test_prefix_padding_puts_exactly_that_much_audio_before_the_detected_speech() -> None:
    stream = read_fixture("hello.wav") + SILENCE_1S  # speech starts ~0.33 s in: room for 0.3 s
    padded = TurnDetector(prefix_padding_ms=300).feed(stream)[-1].audio
    bare = TurnDetector(prefix_padding_ms=0).feed(stream)[-1].audio
    assert stream.find(bare) - stream.find(padded) == 2 * INPUT_RATE * 300 // 1000
    assert padded.endswith(bare)


def test_an_ended_turn_keeps_a_short_tail_but_not_the_whole_closing_silence() -> None:
    pcm = read_fixture("hello.wav")
    stream = pcm + SILENCE_1S * 2
    audio = TurnDetector(silence_ms=1000).feed(stream)[-1].audio
    end = (stream.find(audio) + len(audio)) / (2 * INPUT_RATE)
    _, speech_end = speech_extent(pcm)
    assert speech_end + 0.15 <= end <= speech_end + 0.5


async def test_an_ended_turn_carries_the_whole_phrase_for_transcription(
    transcriber: Transcriber,
) -> None:
    events = TurnDetector().feed(read_fixture("hello.wav") + SILENCE_1S)
    heard = words(await transcriber.transcribe(events[-1].audio))
    said = words(transcripts()["hello.wav"])
    assert heard[0] == said[0] == "hello"  # prefix padding kept the first word
    assert heard[-1] == said[-1] == "me"  # and the tail the last one


def test_two_phrases_separated_by_a_second_of_silence_are_two_turns() -> None:
    stream = read_fixture("hello.wav") + SILENCE_1S + read_fixture("multiply.wav") + SILENCE_1S
    events = TurnDetector().feed(stream)
    assert [event.kind for event in events] == ["started", "ended", "started", "ended"]
    first, second = events[1].audio, events[3].audio
    assert stream.find(first) < stream.find(second)
    assert seconds(first) > 1.0 and seconds(second) > 1.0


def test_silence_alone_is_no_turn() -> None:
    detector = TurnDetector()
    assert detector.feed(read_fixture("silence_2s.wav") + SILENCE_1S * 3) == []
    assert not detector.speaking
    assert detector.flush() is None


def test_speaking_is_true_only_between_started_and_ended() -> None:
    pcm = read_fixture("stop.wav") + SILENCE_1S
    detector = TurnDetector()
    states: list[tuple[str, bool]] = []
    for i in range(0, len(pcm), 1024):
        for event in detector.feed(pcm[i : i + 1024]):
            states.append((event.kind, detector.speaking))
    assert states == [("started", True), ("ended", False)]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=40))
def test_feeding_chunks_of_any_size_gives_the_same_events_as_one_shot(sizes: list[int]) -> None:
    stream = read_fixture("stop.wav") + SILENCE_1S
    expected = TurnDetector().feed(stream)
    detector = TurnDetector()
    events: list[SpeechEvent] = []
    position, index = 0, 0
    while position < len(stream):
        size = sizes[index % len(sizes)]
        events += detector.feed(stream[position : position + size])
        position += size
        index += 1
    assert events == expected
    assert [event.kind for event in events] == ["started", "ended"]


def test_feeding_odd_sized_chunks_splits_samples_without_corrupting_them() -> None:
    stream = read_fixture("what_time_tokyo.wav") + SILENCE_1S
    detector = TurnDetector()
    events = [e for i in range(0, len(stream), 333) for e in detector.feed(stream[i : i + 333])]
    assert events == TurnDetector().feed(stream)


def test_flushing_during_speech_ends_the_turn_with_the_audio_so_far() -> None:
    pcm = read_fixture("what_time_tokyo.wav")
    start, _ = speech_extent(pcm)
    cut = int((start + 0.8) * INPUT_RATE) * 2 + 1  # mid-speech, with a half sample pending
    detector = TurnDetector()
    assert [event.kind for event in detector.feed(pcm[:cut])] == ["started"]
    assert detector.speaking
    event = detector.flush()
    assert event is not None and event.kind == "ended"
    assert 0.8 <= seconds(event.audio) <= 0.8 + 0.3 + 0.05
    # Everything fed up to the cut is in it, even the part too short to score; not the half
    # sample.
    assert pcm[: cut - 1].endswith(event.audio)
    assert not detector.speaking
    assert detector.flush() is None


def test_after_a_flush_the_detector_starts_afresh() -> None:
    pcm = read_fixture("hello.wav")
    detector = TurnDetector()
    detector.feed(pcm[: len(pcm) // 2 + 1])
    detector.flush()
    assert [event.kind for event in detector.feed(pcm + SILENCE_1S)] == ["started", "ended"]


def test_a_blip_shorter_than_min_speech_is_not_a_turn() -> None:
    pcm = read_fixture("what_time_tokyo.wav")
    blip = pcm[int(0.6 * INPUT_RATE) * 2 : int(0.75 * INPUT_RATE) * 2]  # 150 ms of a word
    stream = SILENCE_1S + blip + SILENCE_1S
    assert [e.kind for e in TurnDetector(min_speech_ms=0).feed(stream)] == ["started", "ended"]
    assert TurnDetector(min_speech_ms=300).feed(stream) == []


def windows_of_silence_until_the_turn_ends(silence_ms: int) -> int:
    pcm = read_fixture("what_time_tokyo.wav")
    speech = pcm[: int(speech_extent(pcm)[1] * INPUT_RATE) * 2]  # without the trailing quiet
    detector = TurnDetector(silence_ms=silence_ms)
    assert detector.feed(speech) == [SpeechEvent("started")]
    for count in range(1, 200):
        if detector.feed(b"\x00\x00" * 512):
            return count
    raise AssertionError("the turn never ended")


def test_a_longer_silence_duration_waits_correspondingly_longer_to_end_the_turn() -> None:
    short = windows_of_silence_until_the_turn_ends(300)
    long = windows_of_silence_until_the_turn_ends(1000)
    assert abs((long - short) * 32 - 700) <= 64


def test_two_detectors_fed_in_turn_do_not_disturb_each_other() -> None:
    a = read_fixture("hello.wav") + SILENCE_1S
    b = read_fixture("long_story.wav") + SILENCE_1S
    alone_a, alone_b = TurnDetector().feed(a), TurnDetector().feed(b)
    first, second = TurnDetector(), TurnDetector()
    events_a: list[SpeechEvent] = []
    events_b: list[SpeechEvent] = []
    for i in range(0, max(len(a), len(b)), 3200):
        events_a += first.feed(a[i : i + 3200])
        events_b += second.feed(b[i : i + 3200])
    assert events_a == alone_a
    assert events_b == alone_b


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("START_SENSITIVITY_HIGH", "END_SENSITIVITY_HIGH"),
        ("START_SENSITIVITY_LOW", "END_SENSITIVITY_LOW"),
        (None, None),
        ("START_SENSITIVITY_UNSPECIFIED", "END_SENSITIVITY_UNSPECIFIED"),
    ],
)
def test_every_sensitivity_still_finds_one_turn_in_clear_speech(
    start: str | None, end: str | None
) -> None:
    detector = TurnDetector(start_sensitivity=start, end_sensitivity=end)
    events = detector.feed(read_fixture("remember_color.wav") + SILENCE_1S)
    assert [event.kind for event in events] == ["started", "ended"]


def test_higher_sensitivity_means_lower_thresholds() -> None:
    high = TurnDetector(start_sensitivity="START_SENSITIVITY_HIGH")
    default = TurnDetector()
    low = TurnDetector(start_sensitivity="START_SENSITIVITY_LOW")
    assert high.start_threshold < default.start_threshold < low.start_threshold
    # Ending sooner means treating more windows as silence: a higher end threshold.
    end_high = TurnDetector(end_sensitivity="END_SENSITIVITY_HIGH")
    end_low = TurnDetector(end_sensitivity="END_SENSITIVITY_LOW")
    assert end_low.end_threshold < default.end_threshold < end_high.end_threshold
    for detector in (high, default, low, end_high, end_low):
        assert detector.end_threshold <= detector.start_threshold


def test_an_unknown_sensitivity_or_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="start sensitivity"):
        TurnDetector(start_sensitivity="VERY_HIGH")
    with pytest.raises(ValueError, match="end sensitivity"):
        TurnDetector(end_sensitivity="START_SENSITIVITY_HIGH")
    with pytest.raises(ValueError, match="silence_ms"):
        TurnDetector(silence_ms=-1)


def test_the_paused_utterance_is_exactly_the_audio_the_turn_then_ends_with() -> None:
    pcm = read_fixture("hello.wav")
    detector = TurnDetector()
    early: list[bytes] = []
    ended: list[bytes] = []
    stream = pcm + SILENCE_1S
    for i in range(0, len(stream), 640):
        for event in detector.feed(stream[i : i + 640]):
            if event.kind == "ended":
                ended.append(event.transcript_audio)
        paused = detector.paused_utterance()
        if paused is not None and (not early or early[-1] != paused):
            early.append(paused)
    assert len(ended) == 1
    assert early, "the utterance was complete before the turn ended"
    assert early[-1] == ended[0]


def test_the_paused_utterance_exists_long_before_the_turn_ends() -> None:
    """Whisper can start on it as the words end, not once the whole tail has been heard."""
    stream = read_fixture("hello.wav") + SILENCE_1S
    detector = TurnDetector()  # 500 ms of silence end the turn
    first_paused = ended_at = None
    for i in range(0, len(stream), 640):
        if any(e.kind == "ended" for e in detector.feed(stream[i : i + 640])):
            ended_at = i + 640
            break
        if first_paused is None and detector.paused_utterance() is not None:
            first_paused = i + 640
    assert first_paused is not None and ended_at is not None
    assert seconds(stream[first_paused:ended_at]) >= 0.3  # of the 0.5 s of silence


def test_what_is_transcribed_is_the_utterance_cut_a_little_after_its_last_word() -> None:
    stream = read_fixture("what_time_tokyo.wav") + SILENCE_1S
    (ended,) = [e for e in TurnDetector().feed(stream) if e.kind == "ended"]
    assert ended.audio.startswith(ended.transcript_audio)
    cut = seconds(ended.audio) - seconds(ended.transcript_audio)
    assert 0.03 <= cut <= 0.05  # of the 200 ms tail, Whisper gets the first 160 ms


@pytest.mark.parametrize(
    "fixture",
    ["hello.wav", "multiply.wav", "remember_color.wav", "weather_paris.wav", "stop.wav"],
)
async def test_whisper_hears_the_same_words_in_the_shorter_tail(
    transcriber: Transcriber, fixture: str
) -> None:
    (ended,) = [
        e for e in TurnDetector().feed(read_fixture(fixture) + SILENCE_1S) if e.kind == "ended"
    ]
    whole = words(await transcriber.transcribe(ended.audio))
    assert words(await transcriber.transcribe(ended.transcript_audio)) == whole


def test_no_paused_utterance_while_quiet_or_mid_speech() -> None:
    detector = TurnDetector()
    detector.feed(SILENCE_1S)
    assert detector.paused_utterance() is None
    pcm = read_fixture("hello.wav")
    start, _ = speech_extent(pcm)
    detector.feed(pcm[: int((start + 0.6) * INPUT_RATE) * 2])  # in the middle of the words
    assert detector.speaking
    assert detector.paused_utterance() is None


def test_the_emulator_scores_every_window_exactly_as_pipecats_silero_model_does() -> None:
    from pipecat.audio.vad.silero import SileroOnnxModel

    reference = SileroOnnxModel(str(silero.model_path()), force_onnx_cpu=True)
    ours = silero.SileroModel()
    pcm = read_fixture("what_time_tokyo.wav") + SILENCE_1S + read_fixture("stop.wav")
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    windows = [samples[i : i + 512] for i in range(0, len(samples) - 511, 512)]
    expected, scored = [], []
    for index, window in enumerate(windows):
        if index == len(windows) // 2:  # a reset mid-stream starts both afresh
            reference.reset_states()
            ours.reset()
        expected.append(float(np.asarray(reference(window, INPUT_RATE)).reshape(-1)[0]))
        scored.append(ours.confidence(window))
    assert scored == expected
    assert max(scored) > 0.9 > 0.1 > min(scored), "the stream holds both speech and silence"


def test_the_emulator_imports_nothing_from_pipecat_or_the_bots_even_while_detecting_speech() -> (
    None
):
    script = (
        "import sys, wave\n"
        "import emulator.__main__, emulator.server, emulator.speech\n"
        "from emulator.speech import TurnDetector\n"
        f"pcm = wave.open({str(audio_dir() / 'stop.wav')!r}).readframes(10**9)\n"
        "kinds = [e.kind for e in TurnDetector().feed(pcm + bytes(32000))]\n"
        "assert kinds == ['started', 'ended'], kinds\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pipecat', 'bots'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
