"""The one log set-up of the bot process: loguru to stderr, never with local variables.

loguru's default `diagnose=True` prints the values of local variables in tracebacks, which can
hold an API key or a session token; here tracebacks show code, not values.
"""

from __future__ import annotations

import sys

from loguru import logger


def setup_logging(level: str = "DEBUG") -> None:
    """Send the process's logs to stderr at `level`, without variable values in tracebacks."""
    logger.remove()
    logger.add(sys.stderr, level=level, diagnose=False, backtrace=False)
