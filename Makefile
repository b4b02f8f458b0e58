# Two commands for a newcomer: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TESTED  := $(VENV)/.installed-test
HOST    ?= 127.0.0.1
PORT    ?= 8000

.PHONY: install run ingest test browser bench eval train image bench-container clean

install: $(STAMP)

# What serving and ingest need: no torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $(STAMP)

# The tests also run the sentence-transformers backend (the `st` extra): the pinned CPU build of torch
# first, then the extras under the same constraint.
$(TESTED): $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,st]'
	touch $(TESTED)

ingest: install
	$(BIN)/python -m ingest

# The server watches corpus/ itself (python -m app --watch): each change is ingested in a child process,
# and Ctrl-C stops the server, the watcher and its children together.
run: install
	test -f indexes/CURRENT || $(BIN)/python -m ingest
	$(BIN)/python -m app --watch --host $(HOST) --port $(PORT)

# Debian's Chromium, a CJK font and an emoji font (the 👍/👎 buttons) for the browser tests and screenshots;
# skipped quietly where apt is unavailable.
browser:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'wenquanyi\|wqy' || ! fc-list 2>/dev/null | grep -qi 'emoji'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei fonts-noto-color-emoji >/dev/null) \
	      || echo "WARNING: could not install chromium; browser tests will be skipped"; \
	  else echo "WARNING: chromium missing and apt-get unavailable; browser tests will be skipped"; fi; \
	fi

test: $(TESTED) browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: install
	test -f indexes/CURRENT || $(BIN)/python -m ingest
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.serve
	$(BIN)/python -m bench.watch

# Retrieval and answer quality: the seed corpus with its labelled questions (and the owner's, from the page's
# 👍/👎 in indexes/feedback.jsonl, when there are some), then the development benchmark
# (../shared/devbench, reported per split). Embeddings are remembered in .cache/, so a rerun embeds nothing new.
DEVBENCH ?= ../shared/devbench
eval: install
	$(BIN)/python -m bench.eval --corpus corpus tests/data/eval_questions.jsonl $(if $(wildcard indexes/feedback.jsonl),--feedback indexes/feedback.jsonl)
	$(BIN)/python -m bench.eval --corpus $(DEVBENCH)/corpus $(DEVBENCH)/questions_zh.jsonl $(DEVBENCH)/questions_en.jsonl $(DEVBENCH)/questions_off.jsonl

# The container image (README, "Run in a container"), with podman where it is installed, else docker. No registry
# is reachable on the project's machines: there ../shared/container/local-base.sh installs podman and makes a
# Debian base image, localhost/py-base, and names the package folders the build must see. Elsewhere the
# Dockerfile's own base (python:3.11-slim) is used unless BASE says otherwise.
ENGINE     ?= $(if $(shell command -v podman),podman,docker)
IMAGE      ?= notes-qa
LOCAL_BASE := ../shared/container/local-base.sh
ifneq ($(wildcard $(LOCAL_BASE)),)
BASE        ?= localhost/py-base
IMAGE_FLAGS ?= --network host $(shell sh $(LOCAL_BASE) mounts)
image: export CONTAINERS_CONF ?= /etc/containers/local-base.conf
endif
# CONTEXT and EXTRA_FLAGS (--no-cache, say) are for bench/container.sh.
CONTEXT    ?= .
image:
	$(if $(filter localhost/py-base,$(BASE)),sh $(LOCAL_BASE) >/dev/null)
	$(ENGINE) build $(if $(filter podman,$(ENGINE)),--format docker) $(if $(BASE),--build-arg BASE=$(BASE)) \
	  $(IMAGE_FLAGS) $(EXTRA_FLAGS) -t $(IMAGE) $(CONTEXT)

# Builds the image, runs it on a copy of corpus/, and times start, save -> answer, restarts and rebuilds (minutes;
# needs podman or docker, so not part of `make test`). Figures in docs/benchmarks.md.
bench-container:
	bash bench/container.sh

# The adapter shipped in ingest/data/adapter.npz: trained on ../shared/training with the st extra
# (torch), the settings and seed in train/fit.py's Settings; 5.5-6 minutes on this 2-core machine, and the
# same weights each time (docs/benchmarks.md, "A model of our own").
TRAINING ?= ../shared/training
train: $(TESTED)
	$(BIN)/python -m train --training $(TRAINING) --out ingest/data/adapter.npz

clean:
	rm -rf $(VENV) indexes/builds indexes/CURRENT
