# Everything a fresh machine with Python 3.11+ needs: each target makes its own venv.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: docs docs-serve django-stubs demo test lint typecheck typecheck-pyright pytest test-all-pythons test-sqlalchemy-2.0 bench bench-quick clean test-asan test-valgrind test-django test-django-ci

$(BIN)/.installed: pyproject.toml setup.py src/tocsin/_speedups.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,bench]'
	touch $@

## make demo: run the demo (in-process signals, model signals on SQLite, a web app, a Django project: no services)
demo: $(VENV)-demo/bin/.installed
	$(VENV)-demo/bin/python examples/demo.py

# Stamped like .venv: made once, again only when pyproject.toml changes.
$(VENV)-demo/bin/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)-demo
	$(VENV)-demo/bin/python -m pip install --quiet -e '.[sqlalchemy,asgi,jinja2,redis,django]' uvicorn httpx
	touch $@

## make test: lint, type-check (mypy, pyright), and run the whole suite on every CPython >= 3.11 here
test: lint typecheck typecheck-pyright docs pytest test-all-pythons test-sqlalchemy-2.0

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# Twice: on the compiled send path (tocsin._speedups), then on the pure-Python one.
pytest: $(BIN)/.installed
	$(BIN)/python -c 'import tocsin; print("== compiled send path:", tocsin.compiled)'
	$(BIN)/python -m pytest
	@echo "== pure-Python send path (TOCSIN_NO_EXTENSIONS=1)"
	TOCSIN_NO_EXTENSIONS=1 $(BIN)/python -m pytest -q

# The core suite again on each other CPython >= 3.11 found on this machine (the core's
# tests on the pure-Python send path too).
CORE_TESTS = tests/test_send.py tests/test_speedups.py tests/test_weakrefs.py tests/test_hooks.py tests/test_strict.py tests/test_async.py tests/test_threads.py
test-all-pythons:
	@for py in $$(scripts/other-pythons $(PYTHON)); do \
		venv=.venv-$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		echo "== $$py ($$venv)"; \
		$$py -m venv $$venv && $$venv/bin/python -m pip install --quiet -e '.[test,lint]' \
		&& $$venv/bin/python -m pytest -q \
		&& TOCSIN_NO_EXTENSIONS=1 $$venv/bin/python -m pytest -q $(CORE_TESTS) || exit 1; \
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

## make django-stubs: django-stubs into .tools (the typed Django signals are also checked with them)
django-stubs: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target .tools/django-stubs django-stubs django-stubs-ext

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
	# The site reads tocsin's sources, it does not import them: no compiled extension.
	TOCSIN_NO_EXTENSIONS=1 $(DOCS_VENV)/bin/python -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(DOCS_VENV)/bin/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict --quiet

docs-serve: $(DOCS_VENV)/bin/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs serve

## make test-asan: the compiled send path's tests under AddressSanitizer (gcc's libasan)
SANITIZED = build/sanitized
test-asan: $(BIN)/.installed
	rm -rf $(SANITIZED) && mkdir -p $(SANITIZED)
	cp -r src/tocsin $(SANITIZED)/ && rm -f $(SANITIZED)/tocsin/*.so
	cd $(SANITIZED) && $(CURDIR)/$(BIN)/python -c 'import sysconfig, subprocess, sys; \
		include = sysconfig.get_paths()["include"]; suffix = sysconfig.get_config_var("EXT_SUFFIX"); \
		sys.exit(subprocess.call(["gcc", "-shared", "-fPIC", "-g", "-O1", "-fno-omit-frame-pointer", \
		"-fsanitize=address,undefined", "-I" + include, "tocsin/_speedups.c", "-o", "tocsin/_speedups" + suffix]))'
	PYTHONPATH=$(CURDIR)/$(SANITIZED) LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(BIN)/python -c 'import tocsin, sys; assert tocsin.compiled and "sanitized" in tocsin._speedups.__file__' \
	&& PYTHONPATH=$(CURDIR)/$(SANITIZED) LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_speedups.py tests/test_send.py tests/test_weakrefs.py

## make test-valgrind: the same tests under valgrind's memcheck (slow: many minutes)
test-valgrind: $(BIN)/.installed
	scripts/valgrind-speedups $(BIN)/python tests/test_speedups.py tests/test_send.py

## make test-django: Django's own test suite with tocsin as its dispatcher, and with Django's
## own as the control (the installed Django's version; its sdist is cached in .cache/).
## Another Django: make test-django PYTHON=python3.13 VENV=.venv-django-3.13 (and pip
## install django==X there). LABELS=... runs some of it.
test-django: $(BIN)/.installed
	$(BIN)/python scripts/test-django --python $(BIN)/python $(LABELS)

# The part of it that CI runs: every kind of failure tocsin once had, in minutes.
DJANGO_CI_LABELS = dispatch signals async asgi auth_tests invalid_models_tests handlers \
	m2m_signals migrate_signals test_client
test-django-ci: $(BIN)/.installed
	$(BIN)/python scripts/test-django --python $(BIN)/python $(DJANGO_CI_LABELS)
