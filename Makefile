# Two entry points, each sets up .venv first (quick when nothing changed):
#   make reproduce   # run every sim at fast CPU defaults and write the claims report
#   make test        # the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup reproduce test lint docs bench
setup:
	@bash scripts/setup.sh $(VENV)

reproduce: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/sdtheory reproduce

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n 2 --dist loadfile
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider --doctest-modules sdtheory/core sdtheory/theory -m "" -o addopts=""

lint: setup
	$(VENV)/bin/ruff check .

docs: setup
	$(VENV)/bin/mkdocs build --strict
