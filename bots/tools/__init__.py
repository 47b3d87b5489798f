"""The assistant bot's offline tools, as Pipecat direct functions.

Each tool is a plain async function whose first parameter is ``params:
FunctionCallParams``; Pipecat derives the name, description and JSON schema the model sees
from the signature and Google-style docstring, and auto-registers the handler when the
function is listed in ``LLMContext(tools=[...])`` (or the service's ``tools=``). Results
are delivered through ``params.result_callback``; a bad input yields an ``{"error": ...}``
result the model can read and recover from, rather than an exception.
"""

from pipecat.adapters.llm.schemas.direct_function import DirectFunction

from bots.tools.calculator import CalculatorError, calculate, evaluate
from bots.tools.clock import CITY_TIME_ZONES, current_time, get_current_time
from bots.tools.notes import Note, NotesStore, make_notes_tools

__all__ = [
    "CITY_TIME_ZONES",
    "CalculatorError",
    "Note",
    "NotesStore",
    "assistant_tools",
    "calculate",
    "current_time",
    "evaluate",
    "get_current_time",
    "make_notes_tools",
]


def assistant_tools(store: NotesStore, user_id: str) -> list[DirectFunction]:
    """Return the assistant's direct functions for one user, in a stable order.

    The order is fixed (clock, calculator, then notes) so the tool declarations sent to the
    model, and any tests or logs keyed on them, do not change between sessions. Call once
    per session and reuse the list: the notes tools are closures bound to ``user_id``.

    Args:
        store: The notes database shared by all sessions.
        user_id: The user this session speaks for; the notes tools only see their notes.

    Returns:
        ``[get_current_time, calculate, remember_note, recall_notes, forget_notes]``.
    """
    return [get_current_time, calculate, *make_notes_tools(store, user_id)]
