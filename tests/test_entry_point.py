"""What `python -m bots` decides before it serves: tokens it mints, binds it refuses, the banner;
and how Pipecat's way of starting (`python -m bots.assistant -t webrtc`) becomes `python -m bots`.

Each test calls the entry point's `main` as the shell would (its arguments, the environment),
in an empty folder with none of the bot's variables set (`clean_env`); none of them gets as far
as starting a server or an emulator.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import pytest
from loguru import logger
from pipecat.runner.types import RunnerArguments

import emulator.__main__
from bots import pipecat_runner
from bots.__main__ import banner, main, open_to_anyone
from bots.assistant import NoModelEndpoint, check_endpoint, run
from bots.logs import setup_logging
from bots.server.assemble import server_config
from bots.server.identity import verify
from bots.settings import load_settings

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("clean_env")]

SECRET = "entry-point-test-secret-0123456789abcdef"


def test_the_token_command_prints_a_token_for_the_user_that_expires(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    assert main(["token", "--user", "ana", "--minutes", "5"]) == 0
    token = capsys.readouterr().out.strip()
    assert verify(SECRET, token).user == "ana"
    with pytest.raises(ValueError, match="expired"):
        verify(SECRET, token, now=lambda: 2**40)
    assert SECRET not in token


def test_the_token_command_without_a_secret_says_what_to_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "--user", "ana"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        "SESSION_SECRET is not set: set it (in .env) to mint tokens"
    ]


@pytest.mark.parametrize("user", ["a b", "", "_starts-with-a-mark", "x" * 65])
def test_the_token_command_refuses_a_user_id_that_is_not_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user: str
) -> None:
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    assert main(["token", "--user", user]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "a user id is 1-64 letters" in captured.err


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--host", "0.0.0.0"], {}, "--host 0.0.0.0"),
        (["--host", "192.168.1.5"], {}, "--host 192.168.1.5"),
        # In a container the bind is 0.0.0.0; the published address decides (compose's BOT_BIND).
        (["--host", "0.0.0.0"], {"EXPOSED_HOST": "203.0.113.7"}, "EXPOSED_HOST 203.0.113.7"),
    ],
)
def test_a_network_bind_without_a_session_secret_refuses_to_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    named: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{named} is reachable from other machines: set SESSION_SECRET")
    assert "ALLOW_OPEN_ACCESS=true" in lines[0]


def test_allow_open_access_serves_a_network_bind_with_a_warning_in_the_banner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOW_OPEN_ACCESS", "true")
    settings = load_settings()
    assert open_to_anyone(settings, "0.0.0.0")
    shown = banner(settings, "http://0.0.0.0:7860/client/", None, open_access=True)
    assert "WARNING: ALLOW_OPEN_ACCESS=true: anyone who can reach this address" in shown
    quiet = banner(settings, "http://localhost:7860/client/", None, open_access=False)
    assert "WARNING" not in quiet


def test_a_secret_or_a_loopback_bind_is_not_open_to_anyone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not open_to_anyone(load_settings(), "127.0.0.1")
    assert not open_to_anyone(load_settings(), "localhost")
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    assert not open_to_anyone(load_settings(), "0.0.0.0")


def test_the_published_address_is_an_accepted_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose binds 0.0.0.0 inside and publishes on BOT_BIND (EXPOSED_HOST): a browser that
    opens that address sends it as the Host."""
    monkeypatch.setenv("EXPOSED_HOST", "192.168.1.5")
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    hosts = server_config(load_settings(), "webrtc", "0.0.0.0").allowed_hosts
    assert "192.168.1.5" in hosts and "localhost" in hosts
    assert "0.0.0.0" not in hosts


def fail_holding(token: str) -> None:
    raise RuntimeError("the call failed")


@pytest.mark.parametrize(
    "setup", [setup_logging, emulator.__main__.setup_logging], ids=["bot", "emulator"]
)
def test_a_logged_traceback_shows_the_failing_line_but_no_local_value(
    capsys: pytest.CaptureFixture[str], setup: Callable[[str], None]
) -> None:
    """loguru's default (`diagnose=True`) would print `token = '...'` under the failing line."""
    sentinel = "tok-SENTINEL-0123456789"
    setup("INFO")
    try:
        try:
            fail_holding(sentinel)
        except RuntimeError:
            logger.exception("a session failed")
        err = capsys.readouterr().err
    finally:
        logger.remove()
        logger.add(sys.stderr)
    assert "Traceback" in err and "RuntimeError: the call failed" in err
    assert 'raise RuntimeError("the call failed")' in err
    assert sentinel not in err


@pytest.mark.parametrize(
    ("bot", "argv", "expected"),
    [
        ("assistant", [], ["-t", "webrtc", "--host", "localhost", "--port", "7860"]),
        ("assistant", ["-t", "webrtc"], ["-t", "webrtc", "--host", "localhost", "--port", "7860"]),
        (
            "vision",
            ["--transport=daily", "--port", "9000", "--host", "127.0.0.1"],
            ["-t", "daily", "--host", "127.0.0.1", "--port", "9000"],
        ),
    ],
)
def test_pipecats_runner_flags_become_the_same_flags_of_python_m_bots(
    bot: str, argv: list[str], expected: list[str]
) -> None:
    """Pipecat's runner defaults (localhost:7860) are ours; its default of every transport at
    once is webrtc, our page."""
    assert pipecat_runner.translate(bot, argv) == [bot, *expected]


@pytest.mark.parametrize(
    ("bot", "argv", "named", "run_command"),
    [
        ("assistant", ["-t", "livekit"], "not -t livekit", "`make run`"),
        ("vision", ["-t", "twilio", "--port", "9000"], "not -t twilio", "`make run ARGS=vision`"),
        ("assistant", ["--direct"], "not --direct", "`make run`"),
        ("assistant", ["-t", "daily", "-x", "proxy.example"], "not -x proxy.example", "`make run`"),
    ],
)
def test_a_runner_flag_or_transport_we_do_not_serve_is_refused_in_one_line_naming_make_run(
    capsys: pytest.CaptureFixture[str], bot: str, argv: list[str], named: str, run_command: str
) -> None:
    assert pipecat_runner.main(bot, argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1, captured
    assert lines[0].startswith(f"python -m bots.{bot} ")
    assert named in lines[0] and lines[0].endswith(f"start the bot with {run_command}")


def test_a_session_with_neither_a_key_nor_an_emulator_is_refused_before_anything_dials() -> None:
    """What Pipecat's own runner would do with the bot: no emulator, no key."""
    with pytest.raises(NoModelEndpoint, match="start the bot with `make run`"):
        check_endpoint(load_settings())
    with pytest.raises(NoModelEndpoint):
        asyncio.run(run(RunnerArguments()))


def test_a_key_or_an_emulator_is_a_model_endpoint() -> None:
    check_endpoint(load_settings(google_api_key="a-key"))
    check_endpoint(load_settings(emulator_url="https://127.0.0.1:9", emulator_ca="ca.pem"))
