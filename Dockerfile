# The notes assistant: the corpus is ingested at build time, `python -m app` serves it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1

RUN useradd --create-home --uid 10001 notes
WORKDIR /srv/notes

# Dependencies first, so that editing a note does not reinstall them. torch comes from PyTorch's CPU
# index: PyPI's default build would add several GB of CUDA libraries that this image never uses.
COPY pyproject.toml README.md constraints.txt ./
COPY ingest ingest
COPY app app
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -c constraints.txt . && mkdir indexes && chown notes:notes indexes

COPY corpus corpus
USER notes
# Ingest converts the bundled model once (into indexes/models, about 470 MB) and embeds with torch;
# the server embeds its questions with the same torch engine (ingest/xlmr.py).
RUN python -m ingest

# The server binds 0.0.0.0 inside the container, but answers only requests addressed to these names:
# the published port reached as localhost:8000 or 127.0.0.1:8000, and the health check below.
# To serve other names, widen the list and set a key, for example:
#   docker run -p 8000:8000 -e NOTES_ALLOWED_HOSTS=notes.example.lan,localhost,127.0.0.1 \
#              -e NOTES_API_KEY=$(openssl rand -hex 24) notes-qa
ENV NOTES_ALLOWED_HOSTS=localhost,127.0.0.1,[::1]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
