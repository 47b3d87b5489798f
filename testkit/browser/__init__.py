"""Our browser page in headless Chromium, talking to a bot on the offline emulator over WebRTC.

One copy of the browser harness for `tests/test_browser.py` and `python -m bench.browser_latency`:
`media` builds what the fake devices play, `page` opens Chromium and waits on the page, `probe`
holds what the page measured, `conversation` runs a scripted conversation, `latency` splits each
turn's latency. Nothing leaves this machine; every request to another host is blocked.
"""
