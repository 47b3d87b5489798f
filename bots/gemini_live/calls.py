"""Tool calls as the stage must track them: who cancelled what, and one answer per call.

Gemini Live holds the model's turn until every BLOCKING call has an answer, and refuses an
answer to a call it cancelled itself. Pipecat 1.14 ignores `toolCallCancellation`, does not
cancel calls on a server `interrupted` (it broadcasts the interruption away from itself), and
settles a call it cancels without answering it. So the stage keeps its own record of each call:

- which session (epoch) issued it: a fresh session after an unresumable loss never saw the
  calls of the one before, and their results are not sent (the outbox asks here);
- whether it is NON_BLOCKING (Pipecat says so in `FunctionCallInProgressFrame`) and running,
  for the goAway switch;
- whether the model cancelled it (then it gets no answer), and whether it has had its final
  answer (then a second one, such as the "CANCELLED" Pipecat writes into the context for a call
  cancelled on our side, is not sent).

The record is bounded: the oldest calls are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

MAX_TRACKED_CALLS = 1024


@dataclass
class CallRecord:
    """What the stage knows about one tool call."""

    name: str = ""
    epoch: int = 0
    non_blocking: bool | None = None  # None until Pipecat starts running it
    running: bool = False
    cancelled_by_model: bool = False
    cancel_seen_down: bool = False
    cancel_seen_up: bool = False
    answered: bool = False


class CallBook:
    """The calls of this service, most recent last.

    Args:
        max_calls: How many calls are remembered.
    """

    def __init__(self, max_calls: int = MAX_TRACKED_CALLS) -> None:
        self._max = max_calls
        self._calls: OrderedDict[str, CallRecord] = OrderedDict()
        self._epoch = 0

    def _record(self, call_id: str) -> CallRecord:
        record = self._calls.get(call_id)
        if record is None:
            record = CallRecord(epoch=self._epoch)
            self._calls[call_id] = record
            while len(self._calls) > self._max:
                self._calls.popitem(last=False)
        return record

    # ------------------------------------------------------------------ sessions

    def new_session(self) -> None:
        """A fresh Gemini session started: the calls of earlier ones can no longer be answered."""
        self._epoch += 1

    def issued(self, call_ids: Iterable[str]) -> None:
        """The model asked for these calls (`toolCall`) in the current session."""
        for call_id in call_ids:
            if call_id:
                self._record(call_id).epoch = self._epoch

    def stale(self, call_ids: tuple[str, ...]) -> list[str]:
        """Those of ``call_ids`` issued by an earlier session than the current one."""
        return [c for c in call_ids if c in self._calls and self._calls[c].epoch != self._epoch]

    # ------------------------------------------------------------------ what Pipecat runs

    def started(self, call_id: str, name: str, *, cancel_on_interruption: bool) -> None:
        """Pipecat began running the call (its `FunctionCallInProgressFrame`)."""
        record = self._record(call_id)
        record.name = name
        record.non_blocking = not cancel_on_interruption
        record.running = True

    def finished(self, call_id: str) -> None:
        """The call's final result or cancellation went by."""
        record = self._calls.get(call_id)
        if record is not None:
            record.running = False

    def non_blocking(self, call_id: str) -> bool:
        """Whether the call is NON_BLOCKING (unknown calls count as blocking)."""
        record = self._calls.get(call_id)
        return bool(record and record.non_blocking)

    def blocking_running(self) -> bool:
        """Whether a BLOCKING call is running, holding the model's turn."""
        return any(r.running and r.non_blocking is False for r in self._calls.values())

    def running_names(self, *, cancel_on_interruption: bool) -> list[str]:
        """``name [id]`` of the running calls with that option, for logs."""
        return [
            f"{r.name} [{call_id}]"
            for call_id, r in self._calls.items()
            if r.running and r.non_blocking is (not cancel_on_interruption)
        ]

    # ------------------------------------------------------------------ cancellation

    def cancelled_by_model(self, call_ids: Iterable[str]) -> None:
        """Gemini cancelled these calls: they get no answer from now on."""
        for call_id in call_ids:
            self._record(call_id).cancelled_by_model = True

    def first_cancel(self, call_id: str, *, downstream: bool) -> bool:
        """Note a `FunctionCallCancelFrame`; False for a second one of the same call.

        Two cancellers (an interruption from upstream and one from the server, say) can both
        pick a call before either has removed it; the call is settled once.
        """
        record = self._record(call_id)
        if downstream:
            seen, record.cancel_seen_down = record.cancel_seen_down, True
        else:
            seen, record.cancel_seen_up = record.cancel_seen_up, True
        return not seen

    def needs_answer_after_cancel(self, call_id: str) -> bool:
        """Whether a call cancelled on our side must still be answered (the model waits)."""
        record = self._calls.get(call_id)
        return record is None or not (record.cancelled_by_model or record.answered)

    # ------------------------------------------------------------------ answers

    def may_answer(self, call_id: str, *, is_final: bool) -> bool:
        """Whether a result may go to the model; a final one is counted as the answer.

        No answer to a call the model cancelled, and no second final answer.
        """
        record = self._record(call_id)
        if record.cancelled_by_model or record.answered:
            return False
        if is_final:
            record.answered = True
        return True
