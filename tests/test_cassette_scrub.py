"""What a cassette is scrubbed of, whatever shape the message has, and what it keeps."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cassettes import CassetteWriter, Scrubber, read_cassette
from testkit.fake_keys import fake_google_key

pytestmark = pytest.mark.unit

KEY = fake_google_key()
OTHER_KEY = fake_google_key()
TOKEN = "auth_tokens/abc123-def_456"
SECRETS = (KEY, OTHER_KEY, TOKEN)

words = st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=12)
secret_texts = st.builds(
    lambda before, secret, after: f"{before}{secret}{after}", words, st.sampled_from(SECRETS), words
)
leaves = st.one_of(words, secret_texts, st.integers(), st.booleans(), st.none())
messages = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(words, secret_texts), inner, max_size=4),
    ),
    max_leaves=20,
)


@given(messages)
def test_no_key_or_token_survives_anywhere_in_a_message(message: Any) -> None:
    scrubbed = json.dumps(Scrubber([KEY]).scrub(message))
    assert KEY not in scrubbed and OTHER_KEY not in scrubbed and TOKEN not in scrubbed


@given(st.lists(st.text(min_size=8, max_size=30), min_size=1, max_size=5, unique=True))
def test_each_handle_gets_one_name_wherever_it_appears(handles: list[str]) -> None:
    scrubber = Scrubber()
    updates = [scrubber.scrub({"sessionResumptionUpdate": {"newHandle": h}}) for h in handles]
    names = [u["sessionResumptionUpdate"]["newHandle"] for u in updates]
    assert names == [f"handle-{n}" for n in range(1, len(handles) + 1)]
    resumed = scrubber.scrub({"setup": {"session_resumption": {"handle": handles[-1]}}})
    assert resumed["setup"]["session_resumption"]["handle"] == names[-1]


def test_media_is_hashed_by_default_and_kept_when_asked() -> None:
    pcm = bytes(range(256)) * 4
    blob = {
        "realtimeInput": {
            "audio": {"mimeType": "audio/pcm;rate=16000", "data": base64.b64encode(pcm).decode()}
        }
    }
    hashed = Scrubber().scrub(blob)["realtimeInput"]["audio"]
    assert hashed["data"] == "" and hashed["bytes"] == len(pcm) and len(hashed["sha256"]) == 64
    kept = Scrubber(audio="keep").scrub(blob)["realtimeInput"]["audio"]
    assert base64.b64decode(kept["data"]) == pcm
    text = {"serverContent": {"outputTranscription": {"text": "twelve times seven"}}}
    assert Scrubber().scrub(text) == text  # words are not media


def test_a_written_cassette_reads_back_in_order(tmp_path: Path) -> None:
    ticks = iter([0.0, 0.5, 1.25, 2.0])
    writer = CassetteWriter(tmp_path / "c.jsonl", Scrubber([KEY]), clock=lambda: next(ticks))
    writer.message("client", json.dumps({"setup": {"model": "models/gemini-3.8-live", "k": KEY}}))
    writer.message("server", b'{"setupComplete": {}}')
    writer.closed("server", 1000, "")
    cassette = read_cassette(tmp_path / "c.jsonl")
    assert [(e.t, e.side) for e in cassette.entries] == [
        (0.5, "client"),
        (1.25, "server"),
        (2.0, "server"),
    ]
    assert cassette.entries[0].message == {
        "setup": {"model": "models/gemini-3.8-live", "k": "<redacted>"}
    }
    assert cassette.entries[-1].close == {"code": 1000, "reason": ""}


def test_a_cassette_stops_growing_at_its_cap_with_one_warning(
    tmp_path: Path, warnings: list[str]
) -> None:
    writer = CassetteWriter(tmp_path / "c.jsonl", Scrubber(), max_bytes=400)
    for n in range(20):
        writer.message("server", json.dumps({"serverContent": {"n": n, "pad": "x" * 40}}))
    assert writer.failed is not None
    assert sum("recording stopped" in w for w in warnings) == 1
    assert (tmp_path / "c.jsonl").stat().st_size <= 400
