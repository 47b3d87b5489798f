"""The bot's HTTP server: exactly the routes we serve, each behind the checks it needs.

Pipecat's dev runner serves every transport's routes (dial-in webhooks, WebSockets, uploads,
`/docs`) with CORS open to any origin; a server that faces a network cannot. This package builds
the FastAPI app from Pipecat's own pieces (`SmallWebRTCRequestHandler`, the runner's argument
types), so the bots run unchanged, and adds what the runner lacks: a Host check, same-origin
requests only, bearer tokens with a user id, session limits, body limits, and clear errors.
"""
