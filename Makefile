# The two commands: `make run` (set up and serve) and `make test` (set up and test).
# Everything the project needs is installed from here, on a machine with python3, make and git.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The address people use: demo file links and absolute URLs are made from it, so it follows
# PORT (and HOST, except the wildcard addresses, which no browser can open).
PUBLIC_URL ?= http://$(if $(filter 0.0.0.0 ::,$(HOST)),127.0.0.1,$(HOST)):$(PORT)

.PHONY: install run test test-slow lint bench node-deps browser postgres translations clean \
        java opensearch-launcher opensearch nginx

install: $(STAMP) node-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[postgres,elasticsearch,evm,chainmaker,dev]'
	# chainmaker 3.0.6 pins pysha3, which does not build on Python 3.11; safe-pysha3 (in the
	# chainmaker extra) provides the same module, so the SDK itself goes in without deps.
	$(BIN)/python -m pip install --quiet --no-deps 'chainmaker==3.0.6'
	$(MAKE) --no-print-directory translations
	touch $(STAMP)

translations:
	@if [ -d registry/web/translations ]; then \
	  $(BIN)/pybabel compile --statistics -d registry/web/translations >/dev/null; fi

node-deps: node_modules/.stamp

node_modules/.stamp: package.json $(wildcard package-lock.json)
	@if [ -f package.json ]; then \
	  command -v npm >/dev/null || { echo "npm is needed (Debian: apt-get install nodejs npm)"; exit 1; }; \
	  npm ci --no-audit --no-fund --loglevel=error; fi
	@mkdir -p node_modules && touch $@

# Chromium for the browser tests, and CJK fonts so Chinese pages (and their screenshots)
# render as text, not as boxes.
browser:
	@{ command -v chromium >/dev/null && fc-list :lang=zh 2>/dev/null | grep -q .; } || { \
	  echo "installing Debian's chromium and fonts-noto-cjk for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	   chromium fonts-noto-cjk) >/dev/null; }

# The tests start a throwaway PostgreSQL server of their own (tests/support/postgres_server.py);
# this only makes sure Debian's server binaries are there. NDR_TEST_DATABASE_URL uses an existing
# server instead.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the database tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
	  >/dev/null; }

# nginx for tests/security/test_nginx.py: the shipped site (deploy/nginx-ndr.conf) in front of
# gunicorn, for HSTS, limit_req and log redaction; the tests start and stop it themselves.
nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
	  echo "installing Debian's nginx for the reverse-proxy tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >/dev/null; }

# The search cluster for the tests and for trying the scale-out set-up by hand: OpenSearch 2.19
# nodes in one JVM on 127.0.0.1, started from Maven Central jars (search/engine/). `java` makes
# sure Debian's JDK and Maven are there; the launcher is built once (first run downloads into
# Maven's cache) and rebuilt only when its pom or source change.
OPENSEARCH_NODES ?= 3
OPENSEARCH_DATA  ?= var/opensearch

java:
	@{ command -v java >/dev/null && command -v mvn >/dev/null; } || { \
	  echo "installing Debian's JDK and Maven for the OpenSearch launcher"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	   default-jdk-headless maven) >/dev/null; }

opensearch-launcher: install java
	$(BIN)/python -m search.engine.cluster --build-only

# Foreground: prints NDR_SEARCH_BACKEND/NDR_SEARCH_URL for `make run` in another shell; Ctrl-C
# stops it, the data stays in $(OPENSEARCH_DATA).
opensearch: opensearch-launcher
	$(BIN)/python -m search.engine.cluster --data $(OPENSEARCH_DATA) --nodes $(OPENSEARCH_NODES)

run: export NDR_PUBLIC_URL ?= $(PUBLIC_URL)
run: install
	$(BIN)/ndr init --demo
	@echo "Portal: $$NDR_PUBLIC_URL  ·  department sign-in: $$NDR_PUBLIC_URL/signin"
	@echo "Demo department e-mail addresses and passwords: $${NDR_VAR_DIR:-var}/demo-credentials.txt"
	$(BIN)/gunicorn --config deploy/gunicorn.conf.py --bind $(HOST):$(PORT) "app:create_app()"

test: install browser postgres nginx opensearch-launcher
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not slow"

test-slow: install browser postgres nginx opensearch-launcher
	$(BIN)/pytest -q -m slow

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/log_bench.py
	$(BIN)/python bench/search_bench.py

clean:
	rm -rf $(VENV) node_modules var .pytest_cache
