"""One Live API connection, in parts a reader can hold one at a time.

`live` puts a connection together and is what the server creates (`LiveSession`); `handshake`
reads and checks `setup`; `inbound` reads the client's later messages and `media` turns their
audio and video into turns and sight; `turns` conducts each finished user turn; `tool_calls`
makes the model's function calls and holds it for the blocking ones; `speaker` sends the model's
output, paced; `control` carries out scenario and control-API actions; `channel` is the socket and
its tasks; `context` what the parts share. The server is reached only through
`emulator.registry.Registry`.
"""

from __future__ import annotations

from emulator.session.channel import CloseSession
from emulator.session.live import LiveSession, NotSetUp

__all__ = ["CloseSession", "LiveSession", "NotSetUp"]
