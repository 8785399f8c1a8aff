# levekår — the two set-up commands are `make demo` and `make test`; both build the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint docs clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

# builds everything, then serves it in the foreground (the address is printed; Ctrl-C stops it)
demo: $(STAMP)
	$(BIN)/levekar demo --out out/demo
	$(BIN)/levekar serve out/demo/published

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/levekar schema-doc --out /tmp/levekar-data-model.md && diff -u docs/data-model.md /tmp/levekar-data-model.md
	$(BIN)/levekar catalogue-doc --out /tmp/levekar-indicators.md && diff -u docs/indicators.md /tmp/levekar-indicators.md
	$(BIN)/levekar classify doc --out /tmp/levekar-schemes.md && diff -u docs/schemes.md /tmp/levekar-schemes.md
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

docs: $(STAMP)
	$(BIN)/levekar schema-doc --out docs/data-model.md
	$(BIN)/levekar catalogue-doc --out docs/indicators.md
	$(BIN)/levekar classify doc --out docs/schemes.md

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
