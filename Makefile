# Two commands on a fresh machine: `make run` and `make test` (Python 3.10+ and make are all they need).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The newest day that is over (UTC): a day still going on is refused unless asked for (--partial-day).
DATE ?= $(shell date -u -d yesterday +%F)
RATINGS ?= 2000000
WORKERS ?= 2

SCHEDULER_PORT ?= 8082

.PHONY: install install-spark run test test-unit test-integration browser bench bench-scale bench-fixed bench-serve serve lint db-start db-stop scheduler scheduler-stop clean spark-up spark-down

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

run: install
	$(BIN)/python -m workflow demo-data --if-empty --ratings $(RATINGS)
	$(BIN)/luigi --module workflow DailyPipelines --date $(DATE) --local-scheduler --workers $(WORKERS)
	$(BIN)/python -m workflow summary
	@echo "SELECT film_id, recommended_film_ids FROM store.film (first 10):"
	$(BIN)/python -m workflow films --limit 10

# The Spark engine's extra (pyspark, about 490 MB; Python 3.11+). `make test` installs it, `make run` does not.
install-spark: $(VENV)/.spark-installed

$(VENV)/.spark-installed: $(VENV)/.installed requirements-spark.txt
	@if $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
	  echo "installing the Spark engine's extra (pyspark, about 490 MB)"; \
	  $(BIN)/python -m pip install --quiet -r requirements-spark.txt && touch $@; \
	else echo "the Spark engine needs Python 3.11+: its tests will be skipped (and fail under CI=true)"; fi

# Every test: tests/unit (no database, seconds) and tests/integration (a real PostgreSQL), on both engines.
# Browser tests run when chromium is there (`make browser` installs it) and skip, saying why, when it is not;
# Spark tests skip when Java 17+ is missing, except under CI (CI=true), where they fail.
test: install install-spark
	$(BIN)/python -m pytest

test-unit: install install-spark
	$(BIN)/python -m pytest -m unit

test-integration: install install-spark
	$(BIN)/python -m pytest -m integration

# Debian's chromium and chromedriver for the visualizer test, which skips itself when they are missing.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  mkdir -p output; echo "installing chromium and chromium-driver (log: output/apt-browser.log)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	    > output/apt-browser.log 2>&1 || echo "could not install chromium: the visualizer test will be skipped"; \
	else echo "no chromium and no root apt-get: the visualizer test will be skipped"; fi

# Our graph against the case study's approach (`make bench RATINGS=20000000` for the large size), then the film
# pipeline on Pagila and on a rental history 100 times its size, on both engines (their rows compared), then both
# recommendation methods (the rule and ALS: seconds, peak memory, quality) on RATINGS demo ratings (pandas) and on
# MovieLens from ../shared (pandas and Spark local[2]).
# `make bench ENGINE=spark` runs our graph on Spark local[2] (SPARK_MASTER to change it) with 1g of driver memory
# and adds what it spilled, without the baseline.
ENGINE ?= pandas

bench: install install-spark
	$(BIN)/python benchmarks/bench.py --ratings $(RATINGS) --engine $(ENGINE)
	$(BIN)/python benchmarks/films.py
	$(BIN)/python benchmarks/als.py --ratings $(RATINGS)

# The whole graph at 2M and 20M ratings (and 100M with LARGE=1: long) on pandas, Spark local[2] and a standalone
# cluster of 2 workers on 127.0.0.1, on the demo data and on the "even" shape (1 user per 10 ratings): seconds, peak
# memory of every process, spill, and rows equal to pandas'.
bench-scale: install install-spark
	$(BIN)/python benchmarks/scale.py $(if $(LARGE),--with-100m)

# What a run costs outside its steps (start, imports, scheduling, completeness checks) and a no-op rerun, medians of
# 5, on the data `make run` left in the source (`make bench-fixed DATE=...` for another loaded date).
bench-fixed: install
	$(BIN)/python benchmarks/fixed_cost.py --date $(DATE)

lint: install
	$(BIN)/ruff check --config config/ruff.toml workflow tests benchmarks
	$(BIN)/ruff format --check --config config/ruff.toml workflow tests benchmarks

db-start: install
	$(BIN)/python -m workflow db start

db-stop: install
	$(BIN)/python -m workflow db stop

scheduler: install
	$(BIN)/python -m workflow scheduler start --port $(SCHEDULER_PORT)

scheduler-stop: install
	$(BIN)/python -m workflow scheduler stop

clean: scheduler-stop db-stop
	rm -rf output/20*

# The recommendations server (API and dashboard) on the embedded warehouse, after `make run`:
# http://127.0.0.1:8080/ (`make serve SERVE_PORT=8090 SERVE_WORKERS=2` for another port or more processes).
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8080
SERVE_WORKERS ?= 1

serve: install
	$(BIN)/python -m workflow serve --host $(SERVE_HOST) --port $(SERVE_PORT) --workers $(SERVE_WORKERS)

# Requests per second and p50/p99 latency of the user endpoint at 1, 16 and 64 clients, on RATINGS demo ratings.
bench-serve: install
	$(BIN)/python benchmarks/serve.py --ratings $(RATINGS)

# A Spark standalone cluster on 127.0.0.1 (a master and SPARK_WORKERS workers, state and logs in output/spark/);
# `make spark-up` prints the SPARK_MASTER to use.
SPARK_WORKERS ?= 2

spark-up: install
	$(BIN)/python -m workflow spark up --workers $(SPARK_WORKERS)

spark-down: install
	$(BIN)/python -m workflow spark down
