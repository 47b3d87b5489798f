"""RTVI error messages say `fatal: true` exactly when the failing processor can no longer work."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import ErrorFrame, OutputTransportMessageUrgentFrame
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import run_test

from processors.rtvi_errors import SessionEndingRTVIProcessor

pytestmark = pytest.mark.unit


async def rtvi_error_of(frame: ErrorFrame) -> dict:
    down, _ = await run_test(SessionEndingRTVIProcessor(), frames_to_send=[frame])
    (message,) = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert message["type"] == "error"
    return message["data"]


async def test_an_error_of_a_processor_that_can_no_longer_work_is_reported_fatal() -> None:
    stage = FrameProcessor(name="stage")
    await stage.set_usable(False)
    data = await rtvi_error_of(ErrorFrame(error="gave up", processor=stage))
    assert data == {"error": "gave up", "fatal": True}


async def test_an_error_of_a_processor_that_still_works_is_not_fatal() -> None:
    tool = FrameProcessor(name="tool")
    data = await rtvi_error_of(ErrorFrame(error="a tool failed", processor=tool))
    assert data == {"error": "a tool failed", "fatal": False}
