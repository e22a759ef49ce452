# The two commands of the README. Both set up .venv (Python 3.10, pinned dependencies) first.
PY := .venv/bin/python

.PHONY: setup run test

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) deploy/export.py $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)
