"""RTVI `error` messages that say `fatal: true` when the error ends the session.

Pipecat 1.14 deprecated `ErrorFrame.fatal`: a processor that can no longer do its job reports
an error with `force_treat_as_permanent=True`, which marks it unusable, and the pipeline worker
applies its unusable-processor policy. Pipecat's `RTVIProcessor` still fills the `fatal` field
of its `error` message from the deprecated flag alone, so the browser would read `fatal: false`
about an error that ends the session. The bots' worker ends the session whenever a processor
becomes unusable (`bots.pipeline.assemble` sets `ProcessorUnusablePolicy.END`), so this
processor reports such an error as fatal.
"""

from __future__ import annotations

import pipecat.processors.frameworks.rtvi.models as RTVI
from pipecat.frames.frames import ErrorFrame
from pipecat.processors.frameworks.rtvi.processor import RTVIProcessor

__all__ = ["SessionEndingRTVIProcessor"]


class SessionEndingRTVIProcessor(RTVIProcessor):
    """`RTVIProcessor` whose `error` messages are fatal when their processor is unusable.

    Use it only with a worker whose `processor_unusable_policy` ends or cancels the session,
    since `fatal` tells the client the session has stopped.
    """

    async def _send_error_frame(self, frame: ErrorFrame) -> None:
        processor = frame.processor
        fatal = frame.fatal or (processor is not None and not processor.is_usable)
        await self.push_transport_message(
            RTVI.Error(data=RTVI.ErrorData(error=frame.error, fatal=fatal))
        )
