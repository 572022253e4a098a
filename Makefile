# pasarela: `make demo` runs a whole checkout against the local sandboxes;
# `make test` runs the tests. Each creates .venv with the standard venv and pip.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ADAPTERS := $(sort $(wildcard adapters/*/pyproject.toml))
ADAPTER_DIRS := $(patsubst %/pyproject.toml,%,$(ADAPTERS))
RELAYS := $(sort $(wildcard relays/*/pyproject.toml))
RELAY_DIRS := $(patsubst %/pyproject.toml,%,$(RELAYS))
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean docs

venv: $(STAMP)

$(STAMP): core/pyproject.toml $(ADAPTERS) $(RELAYS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e 'core[test,lint,docs]' $(foreach d,$(ADAPTER_DIRS),-e '$(d)[test]') $(foreach d,$(RELAY_DIRS),-e '$(d)[test]')
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python demo/checkout.py

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# ruff on the whole repository; mypy strict on the core and the adapters ([tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check core adapters relays tests bench demo docs/examples
	$(BIN)/mypy

# make bench: every benchmark quiet, then with one core kept busy (BUSY=1: the busy pass
# only); PASARELA_BENCH_SCALE=0.1 for a quick look.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(if $(BUSY),--busy-only)

# docs/lifecycle.md from the state table, then the site into site/ (mkdocs.yml); --strict:
# a broken link, anchor or cross-reference fails. (Not --quiet: it hides what --strict counts.)
docs: $(STAMP)
	$(BIN)/python -c "from pasarela.lifecycle import render_doc; import sys; sys.stdout.write(render_doc())" > docs/lifecycle.md
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
