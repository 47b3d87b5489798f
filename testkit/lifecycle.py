"""`async with` for test helpers that hold something open: a server, a client's connections.

Each helper says how it starts and how it closes; entering and leaving the block is the same for
all of them, so it is written once here.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncResource:
    """A helper used as `async with helper:`; entering awaits `start()`, leaving `close()`."""

    async def start(self) -> Self:
        """Open what the helper needs; by default there is nothing to open."""
        return self

    async def close(self) -> None:
        """Release everything the helper holds; safe to call twice."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
