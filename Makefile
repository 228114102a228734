# Everything a fresh machine with Python 3.11+ needs: each target makes its own venv.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: docs docs-serve demo test lint typecheck typecheck-pyright pytest test-all-pythons test-sqlalchemy-2.0 bench bench-quick clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,bench]'
	touch $@

## make demo: run the demo (in-process signals, then model signals on SQLite: no services)
demo: $(VENV)-demo/bin/.installed
	$(VENV)-demo/bin/python examples/demo.py

# Stamped like .venv: made once, again only when pyproject.toml changes.
$(VENV)-demo/bin/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)-demo
	$(VENV)-demo/bin/python -m pip install --quiet -e '.[sqlalchemy,asgi,jinja2,redis]' uvicorn httpx
	touch $@

## make test: lint, type-check (mypy, pyright), and run the whole suite on every CPython >= 3.11 here
test: lint typecheck typecheck-pyright docs pytest test-all-pythons test-sqlalchemy-2.0

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/python -m pytest

# The core suite again on each other CPython >= 3.11 found on this machine.
test-all-pythons:
	@for py in $$(scripts/other-pythons $(PYTHON)); do \
		venv=.venv-$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		echo "== $$py ($$venv)"; \
		$$py -m venv $$venv && $$venv/bin/python -m pip install --quiet -e '.[test,lint]' \
		&& $$venv/bin/python -m pytest -q || exit 1; \
	done

# The integration suite again on the SQLAlchemy 2.0 line (the default install is 2.1).
test-sqlalchemy-2.0:
	@echo "== SQLAlchemy 2.0 (.venv-sqlalchemy-2.0)"
	$(PYTHON) -m venv $(VENV)-sqlalchemy-2.0
	$(VENV)-sqlalchemy-2.0/bin/python -m pip install --quiet -e '.[test]' 'sqlalchemy[asyncio]>=2.0.2,<2.1'
	$(VENV)-sqlalchemy-2.0/bin/python -m pytest -q tests/contrib

## make bench: the full benchmark suite against the peers (writes benchmarks/results.*)
bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks

bench-quick: $(BIN)/.installed
	$(BIN)/python -m benchmarks --quick --output /tmp/tocsin-bench
	$(BIN)/python -m benchmarks --remote --quick

clean:
	rm -rf .venv .venv-* site docs/generated .docs-screenshots .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist

## make typecheck-pyright: pyright (pinned, from npm into .tools) on src; strict on the typed-signal modules
PYRIGHT_VERSION ?= 1.1.414
PYRIGHT = .tools/node_modules/.bin/pyright

typecheck-pyright: $(BIN)/.installed
	@if [ ! -x $(PYRIGHT) ] && ! command -v npm >/dev/null && [ "$$CI" != "true" ]; then \
		echo "== pyright skipped: npm is not installed (its type-level tests skip too)"; \
	else \
		[ -x $(PYRIGHT) ] || npm install --no-save --prefix .tools pyright@$(PYRIGHT_VERSION); \
		$(PYRIGHT) --pythonpath $(BIN)/python; \
	fi

## make docs: build the documentation site strictly into site/ (make docs-serve to preview)
DOCS_VENV = $(VENV)-docs

$(DOCS_VENV)/bin/.installed: pyproject.toml
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DOCS_VENV)/bin/python -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(DOCS_VENV)/bin/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict --quiet

docs-serve: $(DOCS_VENV)/bin/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs serve
