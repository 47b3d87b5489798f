"""The emulator as a user starts it: `python -m emulator` as a child process in its own group.

The benchmark reads its `ready https://HOST:PORT ca=PATH` line, measures it from outside, and ends
its process group with SIGTERM, so what is measured includes everything a real client meets.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from loguru import logger

from bench.emulator_common import READY_TIMEOUT_S, REPO
from testkit.processes import stop_group_async


@dataclass(frozen=True)
class EmulatorInfo:
    """A running emulator child process and where to reach it."""

    pid: int
    base_url: str
    ca: Path
    command: list[str]
    log_path: Path


def read_log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


@contextlib.asynccontextmanager
async def emulator_process(
    workdir: Path, log_path: Path | None = None
) -> AsyncIterator[EmulatorInfo]:
    """Start `python -m emulator --port 0 --cert-dir DIR`, yield it once ready, then SIGTERM it."""
    command = [
        sys.executable,
        "-m",
        "emulator",
        "--port",
        "0",
        "--cert-dir",
        str(workdir / "certs"),
    ]
    log_path = log_path or workdir / "emulator.log"
    log_file = _open_log(log_path)
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=log_file,
        cwd=REPO,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                line = (await proc.stdout.readline()).decode().strip()
        except TimeoutError:
            raise RuntimeError(
                f"the emulator printed no ready line in {READY_TIMEOUT_S:.0f} s\n"
                + read_log_tail(log_path)
            ) from None
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "ready" or not parts[2].startswith("ca="):
            raise RuntimeError(
                f"unexpected first line from the emulator: {line!r}\n" + read_log_tail(log_path)
            )
        info = EmulatorInfo(
            pid=proc.pid,
            base_url=parts[1],
            ca=Path(parts[2].removeprefix("ca=")),
            command=command,
            log_path=log_path,
        )
        logger.info(
            f"emulator pid {proc.pid} ready at {info.base_url} after "
            f"{time.perf_counter() - started:.2f} s (model warm-up included)"
        )
        yield info
    finally:
        if await stop_group_async(proc) == -signal.SIGKILL:
            logger.warning(f"emulator pid {proc.pid} ignored SIGTERM; it was killed")
        log_file.close()
        logger.info(f"emulator pid {proc.pid} exited with {proc.returncode}")
