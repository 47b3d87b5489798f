"""A Python stand-in for our browser page over SmallWebRTC (aiortc), for tests and load runs."""
