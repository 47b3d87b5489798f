"""Shared fixtures: a running emulator in the test's event loop, and the speech fixtures."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emulator.server import Emulator, Running, running

REPO = Path(__file__).resolve().parents[1]
AUDIO_DIR = REPO.parent / "shared" / "audio"


def load_wav(name: str) -> bytes:
    """PCM16 mono 16 kHz frames of a fixture in ../shared/audio."""
    with wave.open(str(AUDIO_DIR / name), "rb") as wav:
        assert wav.getframerate() == 16000 and wav.getnchannels() == 1 and wav.getsampwidth() == 2
        return wav.readframes(wav.getnframes())


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulator-certs")


@pytest.fixture
async def emulator(cert_dir: Path) -> AsyncIterator[Running]:
    """An emulator on a free 127.0.0.1 port, output unpaced so tests run fast."""
    async with running(Emulator(pace=0, connection_lifetime_s=None), cert_dir=cert_dir) as r:
        yield r


@pytest.fixture
async def realtime_emulator(cert_dir: Path) -> AsyncIterator[Running]:
    """An emulator that talks at real time, for barge-in and pacing tests."""
    async with running(Emulator(pace=1.0, connection_lifetime_s=None), cert_dir=cert_dir) as r:
        yield r
