"""A model loaded once per process whose calls run one at a time on a thread of its own.

Whisper and Piper each take a second to load and already use every core for one call: running two
calls at once on a small machine only makes both slower, and either would stall the event loop
that carries every session's audio.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Self, TypeVar

A = TypeVar("A")
R = TypeVar("R")


class ModelWorker:
    """Base of the process-wide speech models: `shared()` and a one-thread executor."""

    THREAD_NAME: ClassVar[str] = "model"
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._loaded: Any = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.THREAD_NAME)

    @classmethod
    def shared(cls) -> Self:
        """Return the process-wide instance, creating it on first use (thread-safe)."""
        # Looked up in the class's own namespace so a subclass gets its own instance.
        instance: Any = cls.__dict__.get("_shared")
        if instance is None:
            with ModelWorker._shared_lock:
                instance = cls.__dict__.get("_shared")
                if instance is None:
                    instance = cls()
                    cls._shared = instance  # type: ignore[attr-defined]
        return instance  # type: ignore[no-any-return]

    def _load(self) -> Any:
        """Load the model from local files (called once, under a lock)."""
        raise NotImplementedError

    def _model(self) -> Any:
        """The model, loaded on first use."""
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    self._loaded = self._load()
        return self._loaded

    async def _in_worker(self, call: Callable[[A], R], arg: A) -> R:
        """Run a blocking call on this model's thread without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, arg)
