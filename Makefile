# gaitwatch — two commands on a fresh machine (Python >= 3.11 with venv, make):
#   make demo   set up .venv, analyse the bundled demo run (fixtures/demo) into out/demo
#   make test   set up .venv, run the whole test suite (exits non-zero on any failure)
# .ci/run calls `make test`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# the demo recordings: every CSV in fixtures/demo except the simulator's ground truth
DEMO := $(sort $(filter-out %_truth.csv,$(wildcard fixtures/demo/*.csv)))
DEMO_OUT ?= out/demo

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# reinstall when the project metadata changes
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m pipeline.warmup  # compile the numba kernels once (~15 s), cached on disk
	touch $@

install: $(VENV)/.installed

demo: install
	@test -n "$(DEMO)" || { echo "make demo: no recordings in fixtures/demo/" >&2; exit 1; }
	$(BIN)/gaitwatch replay $(DEMO) --out $(DEMO_OUT)

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf out build *.egg-info .pytest_cache .hypothesis
