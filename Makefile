# `make demo`: the example suite on throwaway local servers, with what it did.
# `make test`: the whole suite, on servers of its own started empty (scripts/test.sh).
# Both install what they need first (scripts/bootstrap.sh).
VENV ?= .venv
PYTEST = $(VENV)/bin/pytest

.PHONY: bootstrap demo test lint bench servers-down

bootstrap:
	@./scripts/bootstrap.sh

demo: bootstrap
	$(PYTEST) tests/examples -v -p no:cacheprovider

test: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	@./scripts/test.sh

bench: bootstrap
	$(VENV)/bin/python -m benchmarks.speed
	$(VENV)/bin/python -m benchmarks.churn
	$(VENV)/bin/python -m benchmarks.clones

servers-down:
	$(VENV)/bin/netra-isolation servers down
