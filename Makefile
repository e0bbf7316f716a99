# zeroforge: the README's commands. Everything runs from the checkout's .venv,
# made (or refreshed) by scripts/setup.sh, which is a fast no-op when current.
VENV ?= .venv
export ZEROFORGE_HOME ?= $(CURDIR)/.zeroforge
export HF_HUB_OFFLINE = 1
export TOKENIZERS_PARALLELISM = false
PYTEST_ARGS ?=

.PHONY: setup demo test test-all ui dvc clean-home

setup:
	@bash scripts/setup.sh

demo: setup  ## README command 1: set up, then run the main job on the embedded default
	$(VENV)/bin/zeroforge demo

test: setup  ## README command 2: set up, then run the test suite (slow tests excluded)
	$(VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

ui: setup  ## the Dagster webserver on 127.0.0.1:3000, on the demo's instance
	$(VENV)/bin/zeroforge ui

dvc:
	$(VENV)/dvc/bin/dvc $(ARGS)

clean-home:
	rm -rf $(ZEROFORGE_HOME)
