# Two entry points, both from a fresh clone:
#   make run    install into .venv and run the default pipeline (digits, no download)
#   make test   install into .venv and run the linters, the test suite and the live-SLURM
#               test (what CI runs; the SLURM part says SKIP where it cannot start SLURM)
#   make test-slurm  the pipeline on a live single-node SLURM alone (tests/slurm/run.sh), and
#               a training job cancelled and one killed there, retried and resumed (fault.sh)
#   make verdict-seeds CONFIG=config/verdict/cifar10_16.yaml SEEDS="5 6"
#               run a verdict seed by seed, archiving each seed as it ends, then its tables
#               from the archive (docs/verdict.md, "The archive")
#   make paper  the paper's figure set on CPU: the CIFAR-10 verdict (config/verdict/) and
#               the pipeline smoke tests of both settings (config/smoke/; needs CIFAR-10
#               under data/); PAPER=gpu for the paper-size configs
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test test-slurm lint clean paper verdict-seeds

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: setup
	$(VENV)/bin/snakemake --cores all

PAPER ?= cpu
PAPER_CONFIGS := $(if $(filter gpu,$(PAPER)),config/paper/cross_silo.yaml config/paper/cross_device.yaml,config/verdict/cifar10_16.yaml $(wildcard config/smoke/*.yaml))

paper: setup
	set -e; for c in $(PAPER_CONFIGS); do $(VENV)/bin/snakemake --cores all --configfile $$c; done

CONFIG ?= config/verdict/cifar10_16.yaml
SEEDS ?= 0 1 2 3 4

verdict-seeds: setup
	set -e; exp=$$($(PY) -c "import yaml; print(yaml.safe_load(open('$(CONFIG)'))['experiment'])"); \
	for s in $(SEEDS); do \
	  $(VENV)/bin/snakemake --cores all --configfile $(CONFIG) --config "seeds=[$$s]"; \
	  $(PY) scripts/archive.py add results/$$exp --config $(CONFIG) --seeds $$s; \
	done; \
	$(PY) scripts/archive.py tables archive/$$exp

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile workflow/

test: lint
	PYTHON=$(PY) bash tests/slurm/run.sh
	PYTHON=$(PY) bash tests/slurm/fault.sh
	$(VENV)/bin/pytest -q

test-slurm: setup
	PYTHON=$(PY) bash tests/slurm/run.sh
	PYTHON=$(PY) bash tests/slurm/fault.sh

clean:
	rm -rf results logs .snakemake report.html
