# Two entry points: `make demo` runs the main job, `make test` the whole test suite.
# Both create (or reuse) the virtualenv in .venv/ and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch, installed before anything that requires torch
# (a bare `torch` requirement would pull a multi-GB CUDA build). On a GPU machine:
#   make demo TORCH='torch --index-url https://download.pytorch.org/whl/cu124'
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/studio demo

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) demo-out .pytest_cache
