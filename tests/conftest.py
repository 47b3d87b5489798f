"""Shared fixtures: a running emulator in the test's event loop, the speech fixtures, the log."""

from __future__ import annotations

import ast
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from loguru import logger

from emulator.server import Emulator, Running, running

# Helpers that assert for several test modules: pytest rewrites their asserts to say what differed.
pytest.register_assert_rewrite("transcript_expectations")

REPO = Path(__file__).resolve().parents[1]
AUDIO_DIR = REPO / "tests" / "fixtures" / "audio"


TIERS = ("unit", "emulator", "postgres", "speech", "e2e", "browser", "docker")
"""The test tiers registered in pyproject.toml; every test carries at least one."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test with no tier: `make test-fast` would silently skip or include it. The
    examples' tests are written as a user of the kit writes them, with no markers."""
    untiered = [
        item.nodeid
        for item in items
        if not any(item.get_closest_marker(t) for t in TIERS)
        and not item.nodeid.startswith("examples/")
    ]
    if untiered:
        raise pytest.UsageError(
            f"tests without a tier marker ({', '.join(TIERS)}): " + ", ".join(untiered[:10])
        )


def load_wav(name: str) -> bytes:
    """PCM16 mono 16 kHz frames of a fixture in tests/fixtures/audio."""
    with wave.open(str(AUDIO_DIR / name), "rb") as wav:
        assert wav.getframerate() == 16000 and wav.getnchannels() == 1 and wav.getsampwidth() == 2
        return wav.readframes(wav.getnframes())


def imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports, at its top or inside a function: for the tests that
    keep imports going one way."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


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


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer `.env` or exported setting leaks in: the test runs in an empty folder with
    none of the bot's variables set."""
    from bots.settings import Settings

    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def log() -> Iterator[list[str]]:
    """Everything loguru writes at DEBUG or above while the test runs, tracebacks included."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG")
    yield lines
    logger.remove(sink)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """The messages loguru logs at WARNING or above while the test runs."""
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A real PostgreSQL server (Debian's), started once for the run; installed under CI=true."""
    import os

    from testkit.postgres import APT_PACKAGE, binaries, running_postgres

    if binaries() is None:
        if os.environ.get("CI", "").lower() != "true":
            pytest.skip(f"PostgreSQL is not installed (apt-get install {APT_PACKAGE})")
        from docker_harness import apt_install

        apt_install([APT_PACKAGE])
    with running_postgres() as server:
        yield server


@pytest.fixture
def database_url(postgres_server: object, request: pytest.FixtureRequest) -> str:
    """An empty database of its own for the test (tables made by the store's migrations)."""
    import uuid

    from testkit.postgres import PostgresServer

    assert isinstance(postgres_server, PostgresServer)
    return postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
