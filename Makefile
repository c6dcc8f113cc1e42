# The two commands of the README. Each sets up its own virtualenv on first use: `serve` with
# what serving the default config needs, `test` adds the test tools and the PostgreSQL driver.
VENV ?= .venv
PYTHON ?= python3
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed

.PHONY: serve test test-ahead lint bench clean

$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(VENV)/bin/pip install --quiet -e '.[test,postgres]'
	touch $(STAMP)

serve: $(RUNTIME)
	$(VENV)/bin/gateway serve

# The tests mostly wait on sockets and sleeps: one pytest worker per core.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n auto

# The whole suite a year from now (every process on the gateway's clock, shifted): no test, and
# no decision of the gateway's, may depend on today's date. CI runs it after `make test`.
test-ahead: $(STAMP)
	GATEWAY_CLOCK_OFFSET=365d $(VENV)/bin/pytest -n auto

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
