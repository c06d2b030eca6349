# Two commands matter on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project with everything it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test serve bench clean chromium dashboard pgbouncer kubectl

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[airflow,dev]"
	touch $(STAMP)

install: $(STAMP) chromium pgbouncer kubectl

demo: $(STAMP)
	PYTHONPATH=dags $(BIN)/python -m example_pipeline.demo

test: $(STAMP) chromium pgbouncer kubectl
	$(BIN)/python -m pytest -q

serve: $(STAMP)
	$(BIN)/lineage serve

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_and_query.py

# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium) \
		|| { echo "could not install chromium: install Debian's chromium package (the browser tests need it)"; exit 1; }

# tests/deploy starts Debian's PgBouncer (1.18 on bookworm) in front of the test database.
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || test -x /usr/sbin/pgbouncer || (apt-get update && apt-get install -y pgbouncer) \
		|| { echo "could not install pgbouncer: install Debian's pgbouncer package (tests/deploy needs it)"; exit 1; }

# tests/deploy renders deploy/kubernetes with `kubectl kustomize` (Debian's kubernetes-client
# if no kubectl is installed; the manifests render with its kustomize v2 as with v5).
kubectl:
	@command -v kubectl >/dev/null 2>&1 || (apt-get update && apt-get install -y kubernetes-client) \
		|| { echo "could not install kubectl: install Debian's kubernetes-client package (tests/deploy needs it)"; exit 1; }

# Rebuild the dashboard's bundle (lineage/dashboard/static/app.js, committed) from lineage/dashboard/web.
dashboard:
	cd lineage/dashboard/web && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) .pytest_cache
