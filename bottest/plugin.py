"""The pytest plugin: a project's tests get the kit's fixtures with no conftest code.

Registered through the `pytest11` entry point, so installing the project is enough. Importing
this module costs nothing: Pipecat, the SDK and the emulator are imported by the fixtures when
a test first asks for one.

- `live_emulator` (session): the emulator as a child process on a free port, stopped by PID.
- `live_bot` (function): `async with live_bot(...) as bot:` runs a bot against it.
- `live_replay` (function): an emulator that replays a recorded session, for `live_bot`.

When a test that ran a bot fails, its report gets a "live conversation" section: each bot's
conversation, numbered, beside the captured log.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from bottest.bot import Build, LiveBot
    from bottest.emulator import LiveEmulator

_CONVERSATIONS = pytest.StashKey[list[Any]]()


@pytest.fixture(scope="session")
def live_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveEmulator]:
    """The Gemini Live emulator for this test run (each xdist worker gets its own)."""
    from bottest.emulator import start_live_emulator

    emulator = start_live_emulator(tmp_path_factory.mktemp("live-emulator"))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def live_bot(
    live_emulator: LiveEmulator, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., contextlib.AbstractAsyncContextManager[LiveBot]]:
    """`async with live_bot(build=None, *, emulator=None, settings=None, scenario=None,
    realtime=False, **build_kwargs) as bot:` runs a bot (by default `build_assistant`) until
    the block ends; see `bottest.bot.run_bot`."""
    from bottest.bot import run_bot

    kept = request.node.stash.setdefault(_CONVERSATIONS, [])

    @contextlib.asynccontextmanager
    async def start(
        build: Build | None = None, *, emulator: LiveEmulator | None = None, **kwargs: Any
    ) -> AsyncIterator[LiveBot]:
        data_dir = tmp_path / f"bot-{len(kept) + 1}"
        data_dir.mkdir()
        async with run_bot(emulator or live_emulator, data_dir, build, **kwargs) as bot:
            kept.append(bot.conversation)
            yield bot

    return start


@pytest.fixture
def live_replay(tmp_path: Path) -> Iterator[Callable[..., LiveEmulator]]:
    """`live_replay(cassette, *flags)`: an emulator (its own process, with any more emulator
    flags) that answers with a recorded session; pass it to `live_bot(emulator=...)`. A session
    that differs from the recording fails the test with `ReplayMismatch`, naming the first
    difference, as soon as the kit sees it."""
    from bottest.emulator import start_live_emulator

    started: list[LiveEmulator] = []

    def replay(cassette: str | Path, *flags: str) -> LiveEmulator:
        certs = tmp_path / f"replay-{len(started) + 1}"
        emulator = start_live_emulator(certs, "--replay", str(cassette), *flags)
        emulator.replaying = True
        started.append(emulator)
        return emulator

    try:
        yield replay
    finally:
        for emulator in started:
            emulator.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    conversations = item.stash.get(_CONVERSATIONS, None)
    if report.failed and conversations:
        for n, conversation in enumerate(conversations, 1):
            title = "live conversation" + (f" (bot {n})" if len(conversations) > 1 else "")
            report.sections.append((title, conversation.render()))
    return report
