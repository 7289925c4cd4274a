# tacn — everything a fresh machine needs goes through these targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# FerretDB (a MongoDB wire-protocol server, Go) is built once, outside the clone.
FERRETDB_DIR ?= $(HOME)/.cache/tacn/ferretdb
FERRETDB_BIN := $(FERRETDB_DIR)/bin/ferretdb

.PHONY: install test test-sdist demo bench lint docs redis chromium ferretdb clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tacn needs Python 3.11+")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench,lint]'
	@touch $(STAMP)

install: $(STAMP)

# Tests start their own redis-server; install it when missing (CI runs as root).
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
	      || echo "warning: could not install redis-server; the Redis tests will fail" >&2; \
	  else echo "warning: redis-server missing and not root; the Redis tests will fail" >&2; fi; }

# The --html test opens reports in Debian's chromium (playwright drives it; it downloads no browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the headless report test will fail" >&2; \
	  else echo "warning: chromium missing and not root; the headless report test will fail" >&2; fi; }

# The MongoDB tests run on it: `make test` fails when it cannot be built (see
# scripts/build-ferretdb.sh); a plain pytest without it skips them instead. The same for
# redis-server and chromium: `make test` sets TACN_TEST_REQUIRE_SERVERS, so a missing one fails.
$(FERRETDB_BIN):
	@bash scripts/build-ferretdb.sh "$(FERRETDB_DIR)"

ferretdb: $(FERRETDB_BIN)

test: $(STAMP) redis chromium $(FERRETDB_BIN)
	TACN_FERRETDB_BIN="$(FERRETDB_BIN)" TACN_TEST_REQUIRE_SERVERS=1 $(BIN)/python -m pytest -q

# The whole suite from an unpacked sdist, installed in a fresh venv (a user's plain pytest: tests whose
# server or browser is missing skip with the reason). Not part of `make test`; see scripts/test-sdist.sh.
test-sdist: $(STAMP)
	bash scripts/test-sdist.sh "$(CURDIR)/$(BIN)/python"

demo: $(STAMP)
	FERRETDB_BIN="$(FERRETDB_BIN)" PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

bench: $(STAMP) $(FERRETDB_BIN)
	TACN_FERRETDB_BIN="$(FERRETDB_BIN)" $(BIN)/python bench/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check .

# docs/cli.md is generated from the commands' help; tests/test_docs.py fails when it is stale.
docs: $(STAMP)
	$(BIN)/python scripts/gen_cli_docs.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
