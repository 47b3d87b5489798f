"""The benchmark's results as Markdown tables (what `make bench` prints) and as JSON."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

from google import genai

from bench.emulator_audio import AudioResult
from bench.emulator_child import EmulatorInfo
from bench.emulator_common import GAP_MS, SETUP_TARGET_MS, fmt
from bench.emulator_load import SetupResult, TextResult


def render(
    emulator: EmulatorInfo,
    setup: SetupResult,
    text: TextResult,
    audio: AudioResult,
) -> str:
    """The results as Markdown."""
    lines: list[str] = []
    add = lines.append
    add("# Gemini Live emulator benchmark")
    add("")
    add(
        f"Machine: {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"google-genai {genai.__version__}. Emulator: `{' '.join(emulator.command[1:])}`, "
        f"pid {emulator.pid}. CPU % is of one core (the emulator and this benchmark share "
        "the machine)."
    )
    add("")
    s = setup.stats()
    add(f"## Session setup ({setup.trials} sequential connects -> setupComplete)")
    add("")
    add("| p50 ms | p95 ms | max ms | target p50 | errors | emulator CPU | bench CPU |")
    add("|---:|---:|---:|---:|---:|---:|---:|")
    verdict = (
        "met"
        if s["p50_ms"] is not None and s["p50_ms"] < SETUP_TARGET_MS
        else f"**missed** (< {SETUP_TARGET_MS:.0f} ms)"
    )
    add(
        f"| {fmt(s['p50_ms'], 1)} | {fmt(s['p95_ms'], 1)} | {fmt(s['max_ms'], 1)} "
        f"| < {SETUP_TARGET_MS:.0f} ms: {verdict} | {len(setup.errors)} "
        f"| {fmt(setup.cpu.emulator_pct if setup.cpu else None)} % "
        f"| {fmt(setup.cpu.bench_pct if setup.cpu else None)} % |"
    )
    add("")
    t = text.stats()
    add(
        f"## {text.sessions} concurrent TEXT sessions x {text.turns_per_session} turns "
        "(text sent -> first model text)"
    )
    add("")
    add(
        "| turns done | wall s | first text p50 ms | p95 ms | max ms | turn complete p95 ms "
        "| connect p50 / max ms | errors | emulator CPU | bench CPU |"
    )
    add("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    add(
        f"| {t['turns_completed']}/{text.sessions * text.turns_per_session} "
        f"| {text.wall_s:.2f} | {fmt(t['first_text_p50_ms'], 1)} "
        f"| {fmt(t['first_text_p95_ms'], 1)} | {fmt(t['first_text_max_ms'], 1)} "
        f"| {fmt(t['turn_complete_p95_ms'], 1)} "
        f"| {fmt(t['connect_p50_ms'], 0)} / {fmt(t['connect_max_ms'], 0)} "
        f"| {len(text.errors)} | {fmt(text.cpu.emulator_pct if text.cpu else None)} % "
        f"| {fmt(text.cpu.bench_pct if text.cpu else None)} % |"
    )
    add("")
    a = audio.stats()
    stagger = f", starts {audio.stagger_ms} ms apart" if audio.stagger_ms else ", started together"
    add(f"## {audio.sessions} concurrent AUDIO sessions in real time{stagger}")
    add("")
    add(
        "Turn latency: last chunk of the recording sent -> first model audio. The recording "
        "ends in a quiet tail (under -40 dBFS), which counts toward the VAD's 500 ms "
        "end-of-speech silence, so 'from speech end' (the chunk holding the last loud audio "
        "sent -> first model audio) is what a user waits. Output RTF: "
        "audio seconds received / seconds from first to last audio chunk (>= 1 keeps up). "
        "Underrun: worst lateness of a chunk for a player that starts at the first chunk. "
        "Input lag: how far the 100 ms sender fell behind its real-time schedule."
    )
    add("")
    add(
        "| # | clip (quiet tail s) | turn latency ms | from speech end ms | toolCall ms "
        "| audio out s | output RTF | underrun ms | input lag max / p95 ms | errors |"
    )
    add("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in audio.results:
        add(
            f"| {r.index} | {r.clip} ({r.clip_quiet_tail_s:.2f}) | {fmt(r.turn_latency_ms)} "
            f"| {fmt(r.voice_end_latency_ms)} | {fmt(r.tool_call_ms)} "
            f"| {r.audio_out_s:.2f} | {fmt(r.output_rtf, 2)} "
            f"| {r.underrun_max_ms:.0f} | {fmt(r.input_lag_max_ms, 1)} / "
            f"{fmt(r.input_lag_p95_ms, 1)} | {'; '.join(r.errors) or 0} |"
        )
    add("")
    add(
        "| turn latency p50 / max ms | from speech end p50 / max ms | min output RTF "
        f"| max underrun ms (sessions with gaps > {GAP_MS:.0f} ms) | max input lag ms "
        "| keeps up | errors | wall s | emulator CPU | bench CPU |"
    )
    add("|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    add(
        f"| {fmt(a['turn_latency_p50_ms'])} / {fmt(a['turn_latency_max_ms'])} "
        f"| {fmt(a['from_speech_end_p50_ms'])} / {fmt(a['from_speech_end_max_ms'])} "
        f"| {fmt(a['output_rtf_min'], 2)} "
        f"| {fmt(a['underrun_max_ms'])} ({a['sessions_with_gaps']}) "
        f"| {fmt(a['input_lag_max_ms'], 1)} | {'yes' if a['keeps_up'] else '**no**'} "
        f"| {len(audio.errors)} | {audio.wall_s:.2f} "
        f"| {fmt(audio.cpu.emulator_pct if audio.cpu else None)} % "
        f"| {fmt(audio.cpu.bench_pct if audio.cpu else None)} % |"
    )
    errors = setup.errors + text.errors + audio.errors
    if errors:
        add("")
        add("## Errors")
        add("")
        for error in errors[:50]:
            add(f"- {error}")
        if len(errors) > 50:
            add(f"- ... and {len(errors) - 50} more")
    return "\n".join(lines)


def to_json(
    emulator: EmulatorInfo, setup: SetupResult, text: TextResult, audio: AudioResult
) -> dict[str, Any]:
    """The results as a JSON-ready dict."""
    return {
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "google_genai": genai.__version__,
        },
        "emulator": {"command": emulator.command[1:], "pid": emulator.pid},
        "setup": {**asdict(setup), **setup.stats()},
        "text": {**asdict(text), **text.stats(), "errors": text.errors},
        "audio": {**asdict(audio), **audio.stats(), "errors": audio.errors},
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
