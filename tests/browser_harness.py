"""Fixtures for the browser suite: Chromium present, one bot server per bot kind, no leftovers.

The harness itself (launching Chromium, the fake microphone and camera, measuring in the page,
the bot server, the emulator's control API) is `testkit.browser` and `testkit.bot_server`,
shared with `python -m bench.browser_latency`; this module adds what only pytest needs:

- `chromium`: Debian's `/usr/bin/chromium` and the `playwright` package. When Chromium is
  missing it is installed with apt-get under `CI=true` or as root; otherwise the suite is skipped
  with the reason. Under `CI=true` nothing here ever skips: a missing piece fails the suite.
- `assistant_bot` / `vision_bot`: `python -m bots assistant|vision` on a free port with its own
  DATA_DIR, shared by the tests of a module, with the emulator's latency control at 0; the
  servers a module's selected tests need are started side by side (`bot_servers`).
  `assistant_3_1_bot` is the assistant on gemini-3.1-flash-live-preview (the default is
  gemini-3.8-live), where every tool blocks; `assistant_text_bot` the same in TEXT modality.
- `axe_core`: axe-core's `axe.min.js` from `bots/web/node_modules` (a dev dependency of the
  page), installed with `npm ci` when it is missing; a test injects it into the page.
- `no_leftovers`: after the module's servers and browsers are stopped, no process the harness
  started (bot, emulator, Playwright driver, Chromium) may still be alive, read from /proc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.bot_server import BotServer, EmulatorControl, start_bot
from testkit.browser.page import CHROMIUM
from testkit.processes import kill_leftovers, leftovers

CI = os.environ.get("CI", "").strip().lower() == "true"
APT_TIMEOUT = 900


def _skip_or_fail(reason: str) -> None:
    """Skip with `reason`, except under CI=true, where the browser suite must run."""
    if CI:
        pytest.fail(f"CI=true: the browser suite may not be skipped: {reason}")
    pytest.skip(reason)


_apt_updated = False


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *args],
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        check=False,
    )


def install_chromium() -> str | None:
    """`apt-get update` (once per run) and `apt-get install -y chromium`; an error, or None."""
    global _apt_updated
    if shutil.which("apt-get") is None:
        return "apt-get is not available to install chromium"
    if not _apt_updated:
        update = _apt("update")
        if update.returncode != 0:
            return f"apt-get update failed:\n{update.stderr[-2000:]}"
        _apt_updated = True
    install = _apt("install", "-y", "chromium")
    if install.returncode != 0:
        return f"apt-get install -y chromium failed:\n{install.stderr[-2000:]}"
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed if need be, and Playwright to drive it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _skip_or_fail("the Python package playwright is not installed (a dev dependency)")
    if not CHROMIUM.exists():
        if not (CI or os.geteuid() == 0):
            _skip_or_fail(
                f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), "
                "or run as root or with CI=true to have the suite install it"
            )
        error = install_chromium()
        if error is not None or not CHROMIUM.exists():
            _skip_or_fail(error or f"apt-get installed chromium, but {CHROMIUM} is still missing")
    return CHROMIUM


WEB = Path(__file__).resolve().parents[1] / "bots" / "web"
AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"
NPM_TIMEOUT = 600


@pytest.fixture(scope="session")
def axe_core() -> Path:
    """axe-core's script, from the page's locked npm dev dependencies (`npm ci` in bots/web
    installs them when it is missing; without npm the accessibility check is skipped, except
    under CI=true)."""
    if AXE.is_file():
        return AXE
    npm = shutil.which("npm")
    if npm is None:
        _skip_or_fail(f"{AXE} is missing and npm is not installed to install it (npm ci)")
    result = subprocess.run(
        [str(npm), "ci", "--no-audit", "--no-fund"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )
    if result.returncode != 0 or not AXE.is_file():
        _skip_or_fail(f"npm ci in {WEB} did not install axe-core:\n{result.stderr[-2000:]}")
    return AXE


SECURED_SECRET = "browser-suite-session-secret-0123456789"
GEMINI_3_1 = "gemini-3.1-flash-live-preview"
KINDS: dict[str, tuple[str, dict[str, str]]] = {
    "assistant": ("assistant", {}),
    "vision": ("vision", {}),
    # The legacy model, where every tool blocks (on the default 3.8 a note is saved NON_BLOCKING).
    "assistant_3_1": ("assistant", {"GEMINI_MODEL": GEMINI_3_1}),
    # Gemini writes, Piper speaks, and the local VAD stops the voice (only 3.1 takes TEXT).
    "assistant_text": ("assistant", {"GEMINI_MODEL": GEMINI_3_1, "RESPONSE_MODALITY": "TEXT"}),
    # Session tokens on, and room for one conversation: the page's token and busy states.
    "secured": ("assistant", {"SESSION_SECRET": SECURED_SECRET, "MAX_SESSIONS": "1"}),
}
"""Each bot server a module may ask for (`<name>_bot`): the bot it runs and its settings."""


@pytest.fixture(scope="module")
def bot_servers(
    request: pytest.FixtureRequest, chromium: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, BotServer]]:
    """The bot servers the module's selected tests need, started together.

    Each loads Whisper and Piper (in its emulator) before serving; started side by side, the
    second start-up costs no extra wall time, and no start-up runs during a measured turn.
    """
    selected = [i for i in request.session.items if i.module is request.module]
    needed = [n for n in KINDS if any(f"{n}_bot" in i.fixturenames for i in selected)]
    servers: dict[str, BotServer] = {}
    try:
        for name in needed:
            bot, env = KINDS[name]
            workdir = tmp_path_factory.mktemp(f"{name}-bot")
            servers[name] = start_bot(bot, workdir, log_name=f"{name}-bot.log", **env)
        for server in servers.values():
            server.wait_until_serving()
            control = EmulatorControl(server)
            try:
                control.set_first_audio_ms(0)  # the latency target is with the control at 0
            finally:
                control.close()
        yield servers
    finally:
        leaked = [str(p) for server in servers.values() for p in server.stop()]
        if leaked:
            pytest.fail(f"the bot servers left processes behind: {leaked}")


def _server(servers: dict[str, BotServer], kind: str) -> BotServer:
    if kind not in servers:
        pytest.fail(f"no {kind} bot was started for this module")
    return servers[kind]


@pytest.fixture(scope="module")
def assistant_bot(bot_servers: dict[str, BotServer]) -> BotServer:
    """`python -m bots assistant` with its emulator, shared by the module's tests."""
    return _server(bot_servers, "assistant")


@pytest.fixture(scope="module")
def assistant_3_1_bot(bot_servers: dict[str, BotServer]) -> BotServer:
    """The assistant on gemini-3.1-flash-live-preview, shared by the module's tests."""
    return _server(bot_servers, "assistant_3_1")


@pytest.fixture(scope="module")
def assistant_text_bot(bot_servers: dict[str, BotServer]) -> BotServer:
    """The assistant in TEXT modality (gemini-3.1 writes, Piper speaks), shared by the module."""
    return _server(bot_servers, "assistant_text")


@pytest.fixture(scope="module")
def vision_bot(bot_servers: dict[str, BotServer]) -> BotServer:
    """`python -m bots vision` with its emulator, shared by the module's tests."""
    return _server(bot_servers, "vision")


@pytest.fixture(scope="module")
def secured_bot(bot_servers: dict[str, BotServer]) -> BotServer:
    """The assistant with session tokens on and `MAX_SESSIONS=1`."""
    return _server(bot_servers, "secured")


@pytest.fixture(scope="module")
def no_leftovers() -> Iterator[None]:
    """Request first (autouse in the module): its teardown runs after every server has stopped."""
    yield
    left = leftovers()
    if left:
        kill_leftovers(left, wait=0)
        pytest.fail(f"the browser suite left processes behind: {[str(p) for p in left]}")
