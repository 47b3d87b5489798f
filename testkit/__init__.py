"""Helpers for testing bots built with this kit: waiting on events, fake time, processes, tool
calls made as Pipecat makes them, frames for pipelines, `async with` for helpers.

Our own tests and benchmarks use them, so there is one copy of each; they import nothing from
`tests/` or `bench/`.
"""
