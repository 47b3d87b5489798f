"""The emulator a test suite talks to: started once as a child process, driven over its control API.

One process for the whole run keeps Whisper, Piper and Silero loaded once (a few seconds) and
off the test's event loop; it listens on a free 127.0.0.1 port and is stopped by its process
group, never by name. Between bots the kit puts back what a test changed (pace, scenario,
faults), so one test's setting never leaks into the next.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bots.emulator_process import EmulatorProcess, start_emulator

FAST_PACE = 0.0
"""Answers sent as fast as they are made: what most tests want."""


class ControlError(RuntimeError):
    """The emulator refused a control request; the message is its own."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class LiveEmulator:
    """A running emulator: where it listens, the CA to trust, and its control API.

    Attributes:
        base_url: `https://127.0.0.1:PORT`, for `Settings.emulator_url`.
        ca: The CA certificate a client must trust (`Settings.emulator_ca`).
        process: The child process, when the kit started it (None for one started elsewhere).
    """

    base_url: str
    ca: Path
    process: EmulatorProcess | None = None
    replaying: bool = False
    """It answers with a recorded session (`--replay`)."""

    def client(self) -> httpx.AsyncClient:
        """An HTTP client for the control API (the caller closes it)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        return httpx.AsyncClient(base_url=self.base_url, verify=context, timeout=30.0)

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One control request; its JSON answer, or `ControlError` with the emulator's reason."""
        async with self.client() as http:
            response = await http.request(method, path, json=body)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200:
            message = (answer or {}).get("error", {}).get("message") if answer else response.text
            raise ControlError(
                f"{method} {path}: {response.status_code} {message}", response.status_code
            )
        return answer

    async def sessions(self) -> list[dict[str, Any]]:
        """Every connection the emulator has seen, oldest first."""
        found = await self.request("GET", "/emulator/sessions")
        return sorted(found, key=lambda s: s.get("opened_at") or 0)

    async def session(self, ident: str) -> dict[str, Any] | None:
        """One connection's summary by its id or its conversation's id, or None."""
        try:
            return dict(await self.request("GET", f"/emulator/sessions/{ident}"))
        except ControlError as exc:
            if exc.status == 404:
                return None
            raise

    async def act(self, ident: str, action: str, body: dict[str, Any] | None = None) -> None:
        """`POST /emulator/sessions/{ident}/{action}`: make the model do something now."""
        await self.request("POST", f"/emulator/sessions/{ident}/{action}", body or {})

    async def replay_problems(self) -> list[str]:
        """How the sessions replayed so far differed from the recording (first difference of
        each), from `GET /emulator/replay`."""
        answer = await self.request("GET", "/emulator/replay")
        return [str(s["error"]) for s in answer.get("sessions", []) if s.get("error")]

    async def set_pace(self, pace: float) -> None:
        await self.request("POST", "/emulator/options", {"pace": pace})

    async def set_scenario(self, scenario: dict[str, Any] | None) -> None:
        await self.request("POST", "/emulator/scenario", scenario or {})

    async def set_faults(self, **faults: Any) -> None:
        await self.request("POST", "/emulator/faults", faults)

    async def reset(self) -> None:
        """Put back what the kit's tests change: fast answers, no scenario, no faults."""
        if self.replaying:
            return
        await self.set_pace(FAST_PACE)
        await self.set_scenario(None)
        await self.set_faults(reset=True)
        await self.request("POST", "/emulator/latency", {"first_audio_ms": 0})

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def start_live_emulator(cert_dir: Path, *extra_args: str) -> LiveEmulator:
    """Start `python -m emulator` on a free port with fast answers, and wait for it to be ready.

    Args:
        cert_dir: Where its CA and certificate are made (a temporary folder).
        extra_args: More emulator flags (`--replay FILE`, `--scenario FILE`, ...).
    """
    process = start_emulator(
        cert_dir,
        # Whisper and Piper load on first use: a suite of typed tests never waits for them.
        extra_args=(
            "--pace",
            str(FAST_PACE),
            "--connection-lifetime-s",
            "0",
            "--no-warm",
            "--log-level",
            "WARNING",
            *extra_args,
        ),
    )
    return LiveEmulator(process.base_url, process.ca, process)
