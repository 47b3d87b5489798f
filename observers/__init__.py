"""Pipeline observers: they watch frames (transcripts, latency, metrics), never change the flow."""
