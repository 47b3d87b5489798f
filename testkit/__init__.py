"""Helpers for testing bots built with this kit: waiting on events, fake time, processes.

Our own tests and benchmarks use them, so there is one copy of each; they import nothing from
`tests/` or `bench/`.
"""
