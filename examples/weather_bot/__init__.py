"""A small bot of its own, built on the assistant: one custom tool and one custom processor."""
