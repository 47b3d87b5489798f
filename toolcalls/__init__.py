"""Tool calls as a voice bot needs them: validated, bounded, answered once, and recorded.

`ToolRegistry` (in `toolcalls.registry`) wraps the bot's tool functions; `toolcalls.spec` holds
the types and limits it works with. `processors.tool_calls.ToolCallProcessor` announces the
registry's calls in the pipeline, and the Gemini Live stage (`bots.gemini_live`) sends their
results with the scheduling each tool asks for.
"""

from toolcalls.registry import ToolRegistry
from toolcalls.spec import (
    BACKSTOP_GRACE_SECS,
    CANCELLED_RESULT,
    DEFAULT_MAX_REPEATS,
    DEFAULT_MAX_RESULT_BYTES,
    RunningCall,
    Scheduling,
    ToolCallListener,
    ToolSpec,
)

__all__ = [
    "BACKSTOP_GRACE_SECS",
    "CANCELLED_RESULT",
    "DEFAULT_MAX_REPEATS",
    "DEFAULT_MAX_RESULT_BYTES",
    "RunningCall",
    "Scheduling",
    "ToolCallListener",
    "ToolRegistry",
    "ToolSpec",
]
