# Two commands matter on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project with everything it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test serve bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[airflow,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m lineage.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

serve: $(STAMP)
	$(BIN)/lineage serve

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_and_query.py

clean:
	rm -rf $(VENV) .pytest_cache
