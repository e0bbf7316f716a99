# zeroforge: the README's commands. Everything runs from the checkout's .venv,
# made (or refreshed) by scripts/setup.sh, which is a fast no-op when current.
VENV ?= .venv
export ZEROFORGE_HOME ?= $(CURDIR)/.zeroforge
export HF_HUB_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false
PYTEST_ARGS ?=

.PHONY: setup demo test test-all test-ui lint ui backfill lineage dvc clean-home

setup:
	@bash scripts/setup.sh

demo: setup  ## README command 1: set up, then run the main job on the embedded default
	$(VENV)/bin/zeroforge demo $(ARGS)

test: setup  ## README command 2: set up, then run the test suite (slow tests excluded)
	$(VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup  ## the layering contracts (import-linter) and ruff
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

test-all: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-ui: setup  ## the UI test: dagster dev + headless Chromium (needs chromium; slow)
	$(VENV)/bin/python -m pytest -m slow tests/orchestration/test_orchestration_ui.py -s $(PYTEST_ARGS)

ui: setup  ## the Dagster webserver on 127.0.0.1:3000, on the demo's instance
	$(VENV)/bin/zeroforge ui

backfill:  ## re-execute the failed iterations from failure (the daemon of `make ui` runs it); ARGS=--dry-run
	$(VENV)/bin/zeroforge backfill $(ARGS)

lineage:  ## what trained a checkpoint, hashes verified: make lineage TARGET=vzero/iter-0002
	$(VENV)/bin/zeroforge lineage $(TARGET)

dvc:
	$(VENV)/dvc/bin/dvc $(ARGS)

clean-home:
	rm -rf $(ZEROFORGE_HOME)
