# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both bootstrap the project-local virtualenv ($(VENV)) idempotently first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmrvos-setup
SETUP_INPUTS := tools/misc/setup_env.sh pyproject.toml $(wildcard requirements/*.txt)
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: setup test demo clean-venv

$(STAMP): $(SETUP_INPUTS)
	bash tools/misc/setup_env.sh $(VENV)
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) tools/misc/run_demo.py $(DEMO_ARGS)

clean-venv:
	rm -rf $(VENV)
