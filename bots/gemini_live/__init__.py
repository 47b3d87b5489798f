"""The Gemini Live stage of every bot: Pipecat's service, made to survive a real connection.

Pipecat 1.14's `GeminiLiveLLMService` ignores `goAway`, reconnects a dropped socket at most twice
with no backoff, only logs a failed connect (the bot then sits silent), ignores
`toolCallCancellation`, never sends `audioStreamEnd`, and drops whatever is sent while it
reconnects. `service.GeminiLiveStage` keeps its protocol handling and replaces the rest:

- **goAway** (`supervisor`, `goaway`, `turns`): switch connections at the next turn boundary,
  and at the latest a safety margin before `timeLeft` runs out;
- **drops and failed connects** (`supervisor`, `errors`): retried with backoff and jitter,
  resuming with the handle; RTVI `service-reconnecting` / `service-reconnected` for the page;
  session events for the transcript; a fatal end when it gives up;
- **the outbox** (`outbox`, `wire`): nothing sent while reconnecting is lost, within bounds;
- **tool calls** (`calls`, `tool_calls`): `toolCallCancellation`, cancellation on a server
  `interrupted`, an answer for every call cancelled on our side, INTERRUPT scheduling, and the
  `on_tool_calls_cancelled_by_model` event;
- **audioStreamEnd** (`microphone`): once per microphone pause, or at once on mute;
- **resumption handles** (`handles`): used for their lifetime, then a fresh seeded session;
- **settings** (`config`): the bot's settings mapped onto the service (`make_llm`);
- **the Pipecat contract** (`pipecat_contract`): every private Pipecat name the project relies
  on, checked against the installed Pipecat by `tests/test_pipecat_contract.py`.

Nothing is imported here, so `outbox` (pure Python) loads without Pipecat.
"""
