# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both bootstrap the project-local virtualenv ($(VENV)) idempotently first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmrvos-setup
SETUP_INPUTS := tools/misc/setup_env.sh pyproject.toml $(wildcard requirements/*.txt)
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup test demo lint clean-venv

$(STAMP): $(SETUP_INPUTS)
	bash tools/misc/setup_env.sh $(VENV)
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) tools/misc/run_demo.py $(DEMO_ARGS)

# flake8, isort --check and yapf --diff with the settings of setup.cfg (mmdet's values); the
# tools (requirements/lint.txt) are installed into the venv on first use.
LINT_PATHS ?= mmrvos tools tests projects demo
LINT_STAMP := $(VENV)/.mmrvos-lint-tools

$(LINT_STAMP): requirements/lint.txt | $(STAMP)
	$(PY) -m pip install -q -r requirements/lint.txt
	touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)
	$(PY) -m yapf --diff --recursive $(LINT_PATHS)

clean-venv:
	rm -rf $(VENV)
