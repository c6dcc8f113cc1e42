# The two commands of the README. Each sets up its own virtualenv on first use.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/gateway serve

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(VENV)/bin/python bench/core.py
	$(VENV)/bin/python bench/connections.py
	$(VENV)/bin/python bench/publish.py
	$(VENV)/bin/python bench/pipeline.py
	$(VENV)/bin/python bench/scheduler.py
	$(VENV)/bin/python bench/health.py

clean:
	rm -rf $(VENV) var logs .pytest_cache
