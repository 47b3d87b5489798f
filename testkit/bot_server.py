"""`python -m bots <kind>` as a user starts it, in its own process group, and its emulator.

The bot starts its own emulator (no `GOOGLE_API_KEY` is inherited); `EmulatorControl` reaches
that emulator's control API to see what the model heard and to inject faults.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from testkit.processes import (
    REPO,
    HarnessError,
    Proc,
    descendants,
    free_port,
    kill_leftovers,
    proc_of,
    record,
)
from testkit.waiting import wait_for

START_TIMEOUT = 120.0
"""The emulator loads Whisper and Piper before the page is served; slow on a busy machine."""
STOP_TIMEOUT = 20.0


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without any of the bot's settings (no key: the emulator), plus overrides."""
    from bots.settings import Settings

    settings = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    env.update(overrides)
    return env


@dataclass
class BotServer:
    """A bot server process (`python -m bots ...`, `make run`) in its own process group, with
    its own DATA_DIR and log file."""

    kind: str
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path
    children: list[Proc] = field(default_factory=list)
    serving: bool = False
    emulator: tuple[str, Path] | None = None
    """The emulator's URL and CA when the bot was pointed at one (`EMULATOR_URL`); else the bot
    started its own, which its banner names."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def transcripts(self) -> Path:
        return self.data_dir / "transcripts"

    @property
    def ca(self) -> Path:
        if self.emulator is not None:
            return self.emulator[1]
        return self.data_dir / "emulator-certs" / "ca.pem"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def emulator_url(self) -> str:
        """The emulator's URL as the banner shows it (or as the bot was given it)."""
        if self.emulator is not None:
            return self.emulator[0]
        match = re.search(r"LOCAL GEMINI LIVE EMULATOR at (https://\S+)", self.output())
        if not match:
            raise HarnessError(f"no emulator URL in the banner:\n{self.tail()}")
        return match.group(1)

    def wait_until_serving(self, timeout: float = START_TIMEOUT) -> None:
        """Poll `GET /client/` until it answers 200; fail early if the process exits."""
        if self.serving:
            return
        with httpx.Client(timeout=2, trust_env=False) as http:

            def serving() -> bool:
                if self.process.poll() is not None:
                    raise HarnessError(
                        f"{self.kind} bot exited with {self.process.returncode}:\n{self.tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    return http.get(f"{self.base_url}/client/").status_code == 200
                return False

            try:
                wait_for(serving, "/client/ to answer", timeout, poll=0.2)
            except AssertionError:
                raise HarnessError(
                    f"/client/ did not answer within {timeout:.0f} s:\n{self.tail()}"
                ) from None
        self.children = descendants(self.process.pid)
        record(self.children)
        self.serving = True

    def interrupt(self, sig: signal.Signals = signal.SIGINT, timeout: float = STOP_TIMEOUT) -> int:
        """Ctrl-C as a terminal sends it (SIGINT to the process group), or `sig`; the exit code."""
        os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(
                f"still running {timeout:.0f} s after {sig.name}:\n{self.tail()}"
            ) from None

    def stop(self, grace: float = 5.0) -> list[Proc]:
        """Ctrl-C to the process group, SIGKILL if that is not enough; the processes left over.

        Args:
            grace: How long the processes it started may take to exit after it did.
        """
        seen = {p.pid: p for p in [*self.children, *descendants(self.process.pid)]}
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return kill_leftovers(list(seen.values()), grace)


def start_bot(
    kind: str | None, workdir: Path, *args: str, log_name: str | None = None, **env: str
) -> BotServer:
    """Start `python -m bots [kind] [args]` on a free 127.0.0.1 port; `wait_until_serving` first.

    Its own process group, DATA_DIR `workdir/data`, output in `workdir/<kind>-bot.log` (or
    `log_name`); no `GOOGLE_API_KEY` or other bot setting is inherited, so it starts its own
    emulator unless `env` says otherwise.
    """
    port = free_port()
    command = [sys.executable, "-m", "bots", *([kind] if kind else []), *args]
    return launch(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        workdir,
        port=port,
        name=kind or "assistant",
        log_name=log_name,
        env=env,
    )


def launch(
    command: list[str],
    workdir: Path,
    *,
    port: int,
    name: str,
    cwd: Path | None = None,
    log_name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> BotServer:
    """Start `command` (which serves the bot's page on `port`) in its own process group.

    The environment is `clean_env(DATA_DIR=workdir/data, **env)`.
    """
    if cwd is None:
        cwd = workdir / "cwd"
        cwd.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    log = workdir / (log_name or f"{name}-bot.log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=clean_env(DATA_DIR=str(data_dir), **(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record([p for p in [proc_of(process.pid)] if p is not None])
    return BotServer(name, process, port, data_dir, log)


@contextlib.contextmanager
def stopped_at_exit(server: BotServer, grace: float = 5.0) -> Iterator[BotServer]:
    """Yield `server`; always stop it and check it left nothing behind (see `BotServer.stop`)."""
    try:
        yield server
    finally:
        leaked = server.stop(grace)
        if leaked:
            raise HarnessError(
                f"the {server.kind} bot left processes behind: {[str(p) for p in leaked]}"
            )


@contextlib.contextmanager
def bot_server(kind: str, workdir: Path, **env: str) -> Iterator[BotServer]:
    """Start a bot server, wait for its page; always stop it and check it left nothing behind."""
    with stopped_at_exit(start_bot(kind, workdir, **env)) as server:
        server.wait_until_serving()
        yield server


class EmulatorControl:
    """The emulator's control API: what the model saw, and faults to inject."""

    def __init__(self, server: BotServer) -> None:
        self._http = httpx.Client(
            base_url=server.emulator_url(),
            verify=ssl.create_default_context(cafile=str(server.ca)),
            trust_env=False,
            timeout=10,
        )

    def close(self) -> None:
        self._http.close()

    def sessions(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Connections opened at or after `since` (epoch seconds), oldest first."""
        response = self._http.get("/emulator/sessions")
        response.raise_for_status()
        found = [s for s in response.json() if float(s.get("opened_at") or 0) >= since]
        return sorted(found, key=lambda s: float(s["opened_at"]))

    def open_session(self, since: float = 0.0) -> dict[str, Any] | None:
        """The newest open connection opened at or after `since`."""
        live = [s for s in self.sessions(since) if s.get("open")]
        return live[-1] if live else None

    def action(self, session_id: str, action: str, body: dict[str, Any] | None = None) -> None:
        response = self._http.post(f"/emulator/sessions/{session_id}/{action}", json=body or {})
        if response.status_code != 200:
            raise HarnessError(f"{action} on {session_id}: {response.status_code} {response.text}")

    def set_first_audio_ms(self, ms: int) -> None:
        """The emulator's latency control, for connections opened from now on."""
        self._http.post("/emulator/latency", json={"first_audio_ms": ms}).raise_for_status()
