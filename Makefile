# The two commands of the README:  make run   (main job, default config)   make test   (tests)
# Both create the virtual environment .venv on first use. Variables: PYTHON, CORES, TORCH
# (e.g. TORCH="torch==2.13.0" to take a specific or local torch build), ARGS (extra
# snakemake/pytest arguments), CONFIG (another config file).
PYTHON ?= python3
VENV ?= .venv
CORES ?= all
TORCH ?= torch
ARGS ?=
CONFIG ?=

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet "$(TORCH)"
	$(VENV)/bin/pip install --quiet -e ".[test,slurm]"
	touch $@

.PHONY: run test report
run: $(VENV)/.installed
	$(VENV)/bin/snakemake --cores $(CORES) $(if $(CONFIG),--configfile $(CONFIG)) $(ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/pytest $(ARGS)

report: $(VENV)/.installed
	$(VENV)/bin/snakemake --cores $(CORES) $(if $(CONFIG),--configfile $(CONFIG)) --report results/report.html
