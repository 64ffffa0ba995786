# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Prefect and GX stay offline and keep their state inside the project.
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180

.PHONY: venv run test bench profile docs lint mutants clean

venv: $(STAMP)

# Bytecode compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on these machines), every
# process would otherwise compile Prefect, GX, pydantic and Typer from source (GX: 6.9 s vs 3.2 s).
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# `hcpcs run` exits 3 when there was nothing new: a successful no-op for make.
run: $(STAMP)
	@$(BIN)/hcpcs run; status=$$?; [ $$status -eq 0 ] || [ $$status -eq 3 ]

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not bench"

# Re-render every generated block of docs/ from the data it documents (make test checks them).
docs: $(STAMP)
	$(BIN)/python -m flows.render_docs

bench: $(STAMP)
	$(BIN)/python -m pytest -q -s tests/bench -m bench

# Where the time of a run goes (pyinstrument): the real 2016, 2017 and 2019 releases, copied to a
# temporary folder (never into the repo), into a new data dir. The text profile goes to stdout.
CMS := ../shared/cms
PROFILED := $(CMS)/2016-annual/HCPC2016_CONTR_ANWEB.txt \
	$(CMS)/2017-annual/2017-Alpha-Numeric-HCPCS-File.zip $(CMS)/2019-annual/2019-Alpha-Numeric-HCPCS-File.zip
profile: $(STAMP)
	@tmp=$$(mktemp -d) && mkdir $$tmp/source && cp $(PROFILED) $$tmp/source/ && \
	$(BIN)/python -m pyinstrument -r text -o $$tmp/profile.txt $(BIN)/hcpcs run -q \
		--source $$tmp/source --data-dir $$tmp/data >/dev/null; \
	status=$$?; cat $$tmp/profile.txt; rm -rf $$tmp; exit $$status

# The mutation score (docs/mutants.md): mutmut mutates the layout and parser, the gate's rules and
# the history/change code in a copy under mutants/, runs the fast tests of those modules against each
# mutant, then the score per module and every survivor are printed. Not part of `make test`: a full
# run takes hours on two cores; `make mutants SAMPLE=100` tries 100 mutants per module (seeded).
# It runs in mutants/, so the real releases are named by absolute path; CI=true makes a missing
# ../shared fail the clean run instead of skipping the real-data tests silently.
MUTMUT = HCPCS_CMS_DIR=$(abspath $(CMS)) CI=true $(BIN)/mutmut
mutants: $(STAMP)
ifdef SAMPLE
	@# a first run only generates the mutants and maps the tests (the sample needs their names): it
	@# ends refusing the unknown name, which is expected; anything else is an error
	@test -f mutants/mutmut-stats.json || $(MUTMUT) run --max-children $$(nproc) no-such-mutant 2>&1 \
		| grep -q "nothing matches" || { echo "mutmut failed: run make mutants without SAMPLE"; exit 1; }
	$(MUTMUT) run --max-children $$(nproc) $$($(BIN)/python -m tests.mutation_score --names $(SAMPLE))
	$(BIN)/python -m tests.mutation_score --sample $(SAMPLE)
else
	$(MUTMUT) run --max-children $$(nproc)
	$(BIN)/python -m tests.mutation_score
endif

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .prefect .pytest_cache .ruff_cache mutants
