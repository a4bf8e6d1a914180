# `make demo`: set up and run the example project on SQLite.
# `make test`: prepare the machine (scripts/prepare_test_machine.sh: Debian packages,
# local database servers), then run the whole test suite (SQLite, PostgreSQL,
# MariaDB), the lint checks and the documentation build.
# `make docs`: build the documentation site into docs/_build/html.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# With pyenv, let tox see every installed interpreter (3.11, 3.12, 3.13).
ifneq ($(shell command -v pyenv 2>/dev/null),)
export PYENV_VERSION ?= $(shell pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$$' | sort -rV | tr '\n' ':' | sed 's/:$$//')
endif

.PHONY: demo test lint docs bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,postgresql]'
	touch $@

demo: $(BIN)/.installed
	cd example && ../$(BIN)/python manage.py migrate -v 0 && ../$(BIN)/python manage.py demo

# Three envs at a time (the PostgreSQL env that restarts the server after the others, see tox.ini;
# most of the suite waits on worker processes, so 2 cores keep up),
# then one closing line over all of them.
# The machine is prepared first (python3-venv may be missing), then the virtualenv.
test:
	scripts/prepare_test_machine.sh
	$(MAKE) --no-print-directory $(BIN)/.installed
	rm -f .tox/junit-*.xml
	$(BIN)/tox run-parallel --parallel 3 --parallel-live $(TOXARGS); status=$$?; \
	$(BIN)/python scripts/test_summary.py .tox; exit $$status

lint: $(BIN)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m docutils --halt=warning README.rst /dev/null
	$(BIN)/python -m docutils --halt=warning CHANGELOG.rst /dev/null
	$(BIN)/python scripts/check_package.py

# The documentation site in docs/_build/html, warnings as errors, built by
# tox's docs env as CI builds it.
docs: $(BIN)/.installed
	$(BIN)/tox run -e docs

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .tox example/db.sqlite3* docs/_build dist build
