"""The JavaScript SDK (`@google/genai` 3.x on Node) talks to the emulator too (issue 3, point 5),
on gemini-3.1 and on the 3.8 family (issue 12): a spoken answer from each 3.8 model (the thinking
one at `thinkingLevel` LOW) and a setup 3.8 refuses (TEXT), closed with 1007 and its reason.

It differs from the Python SDK on the wire: the key only in `?key=`, a `//ws/...` path, API
version v1, camelCase JSON only, permessage-deflate, and it reads server JSON without converting
it. The package is installed at test time into `.cache/js-sdk` (ignored by git, reused between
runs). Outside CI the test skips when Node or the npm registry is missing; under CI it must run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest
from emulator_helpers import wait_session

from emulator.server import Running

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[1]
PREFIX = REPO / ".cache" / "js-sdk"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

SCRIPT = r"""
const { createRequire } = require("node:module");
const req = createRequire(process.env.JS_SDK_PREFIX + "/");
const { GoogleGenAI, Modality } = req("@google/genai");

(async () => {
  const ai = new GoogleGenAI({ apiKey: "js-key", httpOptions: { baseUrl: process.env.BASE_URL } });
  let text = "";
  let settle;
  const finished = new Promise((resolve, reject) => { settle = { resolve, reject }; });
  const timer = setTimeout(() => settle.reject(new Error("no turnComplete in 30 s")), 30000);
  const audio = process.env.MODALITY === "AUDIO";
  // EXPECT=close: the setup is to be refused; the reply is the close code and reason.
  const expectClose = process.env.EXPECT === "close";
  let audioBytes = 0;
  let interactionStatus = null;
  const config = audio
    ? { responseModalities: [Modality.AUDIO], outputAudioTranscription: {} }
    : { responseModalities: [Modality.TEXT] };
  const thinkingLevel = process.env.THINKING_LEVEL;
  if (thinkingLevel) config.thinkingConfig = { thinkingLevel };
  const connecting = ai.live.connect({
    model: process.env.MODEL,
    config,
    callbacks: {
      onmessage: (m) => {
        if (expectClose && m.setupComplete) settle.reject(new Error("the setup was accepted"));
        for (const part of m.serverContent?.modelTurn?.parts ?? []) {
          text += part.text ?? "";
          audioBytes += part.inlineData ? Buffer.from(part.inlineData.data, "base64").length : 0;
        }
        text += m.serverContent?.outputTranscription?.text ?? "";
        if (m.serverContent?.turnComplete) {
          interactionStatus = m.serverContent.interactionStatus ?? null;
          settle.resolve({ text, audioBytes, interactionStatus });
        }
      },
      onerror: (e) => settle.reject(new Error("WebSocket error: " + (e.message ?? e))),
      onclose: (e) => expectClose
        ? settle.resolve({ closeCode: e.code, closeReason: e.reason })
        : settle.reject(new Error(`closed early: ${e.code} ${e.reason}`)),
    },
  });
  if (expectClose) {
    // connect() waits for setupComplete: a refused setup makes it throw, after onclose.
    const connectError = await connecting.then(() => null, (e) => String(e.message ?? e));
    const reply = await finished;
    clearTimeout(timer);
    console.log(JSON.stringify({ ...reply, connectError }));
    process.exit(0);
  }
  const session = await connecting;
  session.sendRealtimeInput({ text: "What is twelve times seven?" });
  const reply = await finished;
  clearTimeout(timer);
  console.log(JSON.stringify(reply));
  session.close();
  process.exit(0);
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
"""


def unavailable(reason: str) -> NoReturn:
    """Skip outside CI; under CI the JavaScript SDK must be tested, so fail instead."""
    if IN_CI:
        pytest.fail(f"CI=true, yet the JavaScript SDK test cannot run: {reason}")
    pytest.skip(reason)


def installed_version() -> str | None:
    package = PREFIX / "node_modules" / "@google" / "genai" / "package.json"
    if not package.is_file():
        return None
    return json.loads(package.read_text(encoding="utf-8")).get("version")


def ensure_sdk() -> str:
    """Install the latest @google/genai 3.x into .cache/js-sdk unless a 3.x is already there."""
    version = installed_version()
    if version and version.startswith("3."):
        return version
    npm = shutil.which("npm")
    if npm is None:
        unavailable("npm is not installed")
    PREFIX.mkdir(parents=True, exist_ok=True)
    # Keep the whole cache folder out of git without touching the repository's .gitignore.
    (PREFIX.parent / ".gitignore").write_text("*\n", encoding="utf-8")
    result = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(PREFIX),
            "@google/genai@^3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    version = installed_version()
    if result.returncode != 0 or not version:
        unavailable(
            f"`npm install @google/genai@^3` failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout)[-1500:]}"
        )
    return version


@pytest.fixture(scope="module")
def js_sdk() -> str:
    if shutil.which("node") is None:
        unavailable("node is not installed")
    return ensure_sdk()


async def run_script(
    r: Running, tmp_path: Path, model: str, modality: str, **options: str
) -> dict[str, Any]:
    """Run the script under Node against the emulator; its reply as JSON. ``options``:
    ``THINKING_LEVEL`` (sent as `thinkingConfig.thinkingLevel`), ``EXPECT="close"``."""
    script = tmp_path / "live.cjs"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {
        **os.environ,
        "NODE_EXTRA_CA_CERTS": str(r.certs.ca),
        "JS_SDK_PREFIX": str(PREFIX),
        "BASE_URL": r.base_url,
        "MODEL": model,
        "MODALITY": modality,
        **options,
    }
    node = shutil.which("node")
    assert node
    proc = await asyncio.create_subprocess_exec(
        node,
        str(script),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, f"node failed: {err.decode()[-3000:]}"
    reply: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return reply


async def test_the_javascript_sdk_connects_and_gets_a_text_answer(
    emulator: Running, js_sdk: str, tmp_path: Path
) -> None:
    assert js_sdk.startswith("3.")
    reply = await run_script(emulator, tmp_path, "gemini-3.1-flash-live-preview", "TEXT")
    assert "84" in reply["text"]
    summary = await wait_session(emulator, lambda s: s["frames"].get("text") == 1)
    # @google/genai 3.x defaults to API version v1 and camelCase; the emulator understood both.
    assert summary["api_version"] == "v1"
    assert summary["model"] == "models/gemini-3.1-flash-live-preview"
    assert summary["history"][0] == {
        "role": "user",
        "text": "What is twelve times seven?",
        "source": "text",
    }


@pytest.mark.speech
async def test_the_javascript_sdk_gets_a_spoken_answer_from_gemini_3_8_live(
    emulator: Running, js_sdk: str, tmp_path: Path
) -> None:
    reply = await run_script(emulator, tmp_path, "gemini-3.8-live", "AUDIO")
    assert reply["text"] == "12 times 7 is 84."
    assert reply["audioBytes"] > 24000, "about a second of 24 kHz speech, at least"
    summary = await wait_session(emulator, lambda s: s["frames"].get("text") == 1)
    assert summary["model"] == "models/gemini-3.8-live"
    assert summary["config"]["modality"] == "AUDIO"


async def test_the_javascript_sdk_sees_a_text_setup_on_gemini_3_8_live_closed_with_1007_naming_it(
    emulator: Running, js_sdk: str, tmp_path: Path
) -> None:
    reply = await run_script(emulator, tmp_path, "gemini-3.8-live", "TEXT", EXPECT="close")
    assert reply["closeCode"] == 1007, reply
    reason = reply["closeReason"]
    assert reason.startswith("responseModalities TEXT ") and "models/gemini-3.8-live" in reason
    # @google/genai 3.x's connect() waits for setupComplete, so it fails too, with both.
    error = reply["connectError"]
    assert error is None or ("1007" in error and reason in error), error
    summary = await wait_session(emulator, lambda s: s["close_code"] is not None)
    assert (summary["close_code"], summary["close_reason"]) == (1007, reason)
    assert summary["history"] == [], "refused before any turn"


@pytest.mark.speech
async def test_the_javascript_sdk_gets_a_spoken_answer_from_the_thinking_model_at_level_low(
    emulator: Running, js_sdk: str, tmp_path: Path
) -> None:
    model = "gemini-3.8-live-extended-thinking"
    reply = await run_script(emulator, tmp_path, model, "AUDIO", THINKING_LEVEL="LOW")
    assert reply["text"] == "12 times 7 is 84."
    assert reply["audioBytes"] > 24000, "about a second of 24 kHz speech, at least"
    assert reply["interactionStatus"] == "IDLE", "the thinking model says its turn is over"
    summary = await wait_session(emulator, lambda s: s["frames"].get("text") == 1)
    assert summary["model"] == f"models/{model}"
    assert summary["config"]["thinking"] == {"thinking_level": "LOW"}
