"""Start the emulator as a child process, the way the run command and the benchmarks do.

A child process keeps Whisper and Piper out of the bot's event loop and lets the bot's process be
stopped without losing the emulator mid-sentence; it is ended by PID, never by name.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

READY = re.compile(r"^ready (https://\S+) ca=(.+)$")


class EmulatorStartError(RuntimeError):
    """The emulator did not print its ready line."""


@dataclass
class EmulatorProcess:
    """A running emulator child: its URL, the CA to trust, and the process to stop."""

    process: subprocess.Popen[str]
    base_url: str
    ca: Path

    def stop(self, timeout: float = 10.0) -> int:
        """Stop the child (SIGTERM, then SIGKILL after `timeout`) and return its exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the child when the parent dies, so a killed bot leaves no orphan."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_emulator(
    cert_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    extra_args: tuple[str, ...] = (),
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> EmulatorProcess:
    """Start `python -m emulator` in its own process group and wait for its ready line."""
    cmd = [
        sys.executable,
        "-m",
        "emulator",
        "--host",
        host,
        "--port",
        str(port),
        "--cert-dir",
        str(cert_dir),
        *extra_args,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        env=env,
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = proc.stdout.readline()
            if not line:
                raise EmulatorStartError(f"the emulator exited with code {proc.wait()}")
            match = READY.match(line.strip())
            if match:
                return EmulatorProcess(proc, match.group(1), Path(match.group(2)))
        raise EmulatorStartError(f"no ready line from the emulator within {timeout:.0f} s")
    except BaseException:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        raise
    finally:
        sel.close()
