# Two commands do everything on a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl

.PHONY: install quickstart test test-slow bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip wheel

# Reinstall only when the project's requirements change.
$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/rewardlab quickstart

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -n 2 -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

bench: $(STAMP)
	$(PY) -m benchmarks.wrapper_overhead
	$(PY) -m benchmarks.reward_training
	$(PY) -m benchmarks.pbrl_pendulum

clean:
	rm -rf $(VENV) runs .pytest_cache
