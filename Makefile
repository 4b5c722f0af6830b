# zuki: two commands from a fresh machine (`make demo`, `make test`); see README.md.
# Every target first runs tools/bootstrap.sh, which finds or builds a free-threaded
# CPython 3.13t and the virtual environments; with everything in place it takes a second.

SHELL := /bin/bash
FT := .venv/bin/python
GIL := .venv-gil/bin/python
PARALLEL_THREADS ?= 4
PYTEST_FLAGS ?=

.PHONY: bootstrap demo test test-ft test-gil lint bench stress clean

bootstrap:
	@tools/bootstrap.sh >/dev/null

demo: bootstrap
	$(FT) examples/performance_comparison.py

# The suite on 3.13t (under coverage), then the stress tests again under pytest-run-parallel
# with several threads per test, then the whole suite on the stock GIL build.
test: bootstrap
	@tools/run_tests.sh $(PARALLEL_THREADS) $(PYTEST_FLAGS)

lint: bootstrap
	$(GIL) -m ruff check zuki tests stress perf examples tools
	$(GIL) -m ruff format --check zuki tests stress perf examples tools
	$(GIL) -m mypy --strict zuki

# Every benchmark under perf/, then perf/results/report.md, the charts and README's summary
# (perf/run_all.py says how); BENCH_FLAGS="--rigorous" for a longer, steadier run.
bench: bootstrap
	$(FT) perf/run_all.py $(BENCH_FLAGS)

stress: bootstrap
	$(FT) -m stress $(STRESS_FLAGS)

clean:
	rm -rf .venv .venv-gil .coverage .coverage.* build *.egg-info
