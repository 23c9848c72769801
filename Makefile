# mdefleet — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

.PHONY: demo test venv services lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

## Run the product: dashboard + Celery worker and beat + a simulated fleet of 50 hosts (SQLite, no services).
demo: venv
	$(BIN)/python scripts/demo.py

## Run the tests against the machine's real PostgreSQL and Redis (started if down).
TEST_ENV = DEBUG=1 \
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mdefleet} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15} \
	MDEFLEET_FERNET_KEYS=$${MDEFLEET_FERNET_KEYS:-bGV0LXRoZS10ZXN0cy1oYXZlLWEta2V5LTMyYnl0ZXM=} \
	PYTHONPATH=.

test: venv
	bash scripts/test-services.sh
	bash scripts/test-system-deps.sh
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf var test-artifacts

## Benchmark a full rollout at 100 and 1,000 simulated hosts (and 1,000 slower ones), and the pages, on the machine's PostgreSQL and Redis (not part of `make test`).
bench: venv
	bash scripts/test-services.sh
	$(TEST_ENV) $(BIN)/python manage.py bench --hosts 100 --workers both $(BENCH_ARGS)
	$(TEST_ENV) $(BIN)/python manage.py bench --hosts 1000 --workers both $(BENCH_ARGS)
	@echo "1,000 hosts that take time (a tenth of their real durations): where a second worker pays off"
	$(TEST_ENV) $(BIN)/python manage.py bench --hosts 1000 --workers both --waves one --skip-bare --time-scale 0.1 $(BENCH_ARGS)
	$(TEST_ENV) $(BIN)/python manage.py bench pages
