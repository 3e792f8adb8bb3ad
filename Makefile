# Two entry points, both from a fresh clone:
#   make run    install into .venv and run the default pipeline (digits, no download)
#   make test   install into .venv and run the linters and the test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: setup
	$(VENV)/bin/snakemake --cores all

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/snakemake --lint

test: lint
	$(VENV)/bin/pytest -q

clean:
	rm -rf results logs .snakemake report.html
