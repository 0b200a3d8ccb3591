# One entry point for people and CI. Every target builds the virtualenv it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO    = demo-data

.PHONY: install test test-fast test-properties test-airflow lint format demo dashboard screenshots chromium vendor-chartjs vendor-codemirror bench bench-long-line docs clean

$(BIN)/crash-aggregates: pyproject.toml src/crash_aggregates/_scan.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# The scanner is an optional extension: if the new _scan.c does not
	@# compile, no stale build may stay behind to pass the tests.
	rm -f src/crash_aggregates/*.so
	$(BIN)/pip install --quiet -e '.[test,spark,s3,web,report]'
	@touch $@

install: $(BIN)/crash-aggregates

test: install chromium
	$(BIN)/python -m pytest

# The browser of the dashboard's tests: Debian's chromium, installed only when missing
# (Playwright is pointed at it; it never downloads a browser of its own).
CHROMIUM = /usr/bin/chromium
chromium: $(CHROMIUM)
$(CHROMIUM):
	apt-get update && apt-get install -y chromium

# The inner loop: everything but Spark and the tests marked slow.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" --ignore=tests/test_spark.py

# The property tests with at least 2,000 examples of every property (make test runs
# the whole-day ones, (c) and (e), with 100 each; docs/reliability.md has the times).
test-properties: install
	HYPOTHESIS_PROFILE=full $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_properties.py

# deploy/airflow's DAG file, loaded by Airflow's own DagBag in a virtualenv of its own
# (Airflow's ~130 dependencies do not belong in the project's).
AIRFLOW_VENV = .venv-airflow
$(AIRFLOW_VENV)/bin/airflow:
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet 'apache-airflow>=3.0,<4'

test-airflow: $(AIRFLOW_VENV)/bin/airflow
	AIRFLOW_HOME=$$(mktemp -d) $(AIRFLOW_VENV)/bin/python deploy/check_airflow_dag.py deploy/airflow

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Applies the formatter and the safe lint fixes (what `make lint` checks).
format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: install
	rm -rf $(DEMO)
	$(BIN)/crash-aggregates generate --output $(DEMO)/pings --min-submission-date 2016-03-09 --max-submission-date 2016-03-15 --pings-per-day 20000 --seed 1
	$(BIN)/crash-aggregates run --input $(DEMO)/pings --output $(DEMO)/aggregates --min-submission-date 2016-03-09 --max-submission-date 2016-03-15
	$(BIN)/crash-aggregates sql --data $(DEMO)/aggregates --file examples/crash_rates_by_channel.sql

# The demo week in the dashboard: open the URL it prints (Ctrl-C stops it).
# The examples/ queries and dashboard are imported into the demo's state file.
dashboard: demo
	$(BIN)/crash-aggregates queries import examples --state $(DEMO)/state.sqlite3
	$(BIN)/crash-aggregates serve --data $(DEMO)/aggregates --state $(DEMO)/state.sqlite3

# The screenshots docs/ shows, taken by the browser tests (a plain test run
# writes them to a scratch folder instead).
screenshots: install chromium
	CRASH_AGGREGATES_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/python -m pytest -q tests/test_web_browser.py tests/test_web_console_browser.py tests/test_team_browser.py

# Refresh the dashboard's vendored Chart.js (and its license) from the npm registry.
CHARTJS_VERSION ?= 4.6.1
VENDOR = src/crash_aggregates/web/static/vendor
vendor-chartjs:
	rm -rf build/chartjs && mkdir -p build/chartjs
	cd build/chartjs && npm pack --silent chart.js@$(CHARTJS_VERSION) && tar xzf chart.js-$(CHARTJS_VERSION).tgz
	cp build/chartjs/package/dist/chart.umd.min.js $(VENDOR)/chart.umd.min.js
	cp build/chartjs/package/LICENSE.md $(VENDOR)/chart.js.LICENSE.md

# Rebuild the console's editor: CodeMirror 6 (versions pinned in tools/codemirror/package.json)
# bundled by esbuild into one file, with the licenses of every package in it.
vendor-codemirror:
	rm -rf build/codemirror && mkdir -p build/codemirror
	cp tools/codemirror/package.json tools/codemirror/entry.mjs tools/codemirror/licenses.mjs build/codemirror/
	cd build/codemirror && npm install --silent --no-audit --no-fund
	cd build/codemirror && ./node_modules/.bin/esbuild entry.mjs --bundle --minify --format=iife \
		--global-name=CodeMirror --legal-comments=none --metafile=meta.json --outfile=codemirror.min.js
	cd build/codemirror && node licenses.mjs meta.json codemirror.LICENSES.md
	cp build/codemirror/codemirror.min.js build/codemirror/codemirror.LICENSES.md $(VENDOR)/

# BENCH_ARGS: e.g. --quick (a smoke run on small corpora), --runs 5, --only realistic,duckdb
bench: install
	$(BIN)/pip install --quiet -e '.[bench]'
	@# Bytecode, as an installed package has it (PYTHONDONTWRITEBYTECODE would
	@# otherwise make every run compile the project's modules again: ~60 ms).
	$(BIN)/python -m compileall -q src
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# The documentation site (mkdocs.yml, docs/) into site/. DOCS_FLAGS=--strict
# (as CI builds it) fails on a broken link or anchor and on a page missing
# from the nav. NO_MKDOCS_2_WARNING: Material's notice about its successor,
# printed on every build.
$(BIN)/mkdocs: $(BIN)/crash-aggregates pyproject.toml
	$(BIN)/pip install --quiet -e '.[docs]'
	@touch $@

docs: $(BIN)/mkdocs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build $(DOCS_FLAGS)

# Peak memory of `run` on a day holding one 3 GiB line (issue 14), against the 300 MB target.
# LONG_LINE_ARGS: e.g. --compression zstd, --compression none, --engines embedded,spark
bench-long-line: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks.long_line $(LONG_LINE_ARGS)

# -- The C scanner under sanitizers (fuzz/, docs/reliability.md) ----------------
# `make fuzz` fuzzes it for FUZZ_TIME seconds (libFuzzer's seed FUZZ_SEED, 0 =
# random; more libFuzzer flags in FUZZ_ARGS). The corpus grows in fuzz/corpus/
# from run to run; an input that crashes it or on which two parsing tiers
# disagree is left in fuzz/crashes/. Then the line and branch coverage of
# _scan.c that the corpus reaches is printed.
.PHONY: fuzz fuzz-build fuzz-ci fuzz-coverage fuzz-regression test-sanitized
FUZZ_TIME   ?= 600
FUZZ_SEED   ?= 0
FUZZ_CORPUS ?= fuzz/corpus
FUZZ_BUILD   = build/fuzz
# atheris's runtime holds libFuzzer and the ASan + UBSan runtime, preloaded into
# a Python that is not built with them. Python's own small-object allocator is
# turned off so that ASan sees every allocation the scanner makes.
SANITIZE = LD_PRELOAD="$$($(BIN)/python -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so" \
	PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# clang, from Debian's packages, compiles the sanitized scanners; atheris (the fuzz extra) runs them.
$(VENV)/.fuzz-tools: $(BIN)/crash-aggregates pyproject.toml
	@command -v clang >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang; }
	$(BIN)/pip install --quiet -e '.[fuzz]'
	@touch $@

$(FUZZ_BUILD)/.built: $(VENV)/.fuzz-tools src/crash_aggregates/_scan.c fuzz/build.py
	$(BIN)/python fuzz/build.py $(FUZZ_BUILD)
	@touch $@

fuzz-build: $(FUZZ_BUILD)/.built

fuzz: fuzz-build
	mkdir -p $(FUZZ_CORPUS)
	$(SANITIZE) $(BIN)/python fuzz/scanner.py $(FUZZ_CORPUS) -max_total_time=$(FUZZ_TIME) -seed=$(FUZZ_SEED) $(FUZZ_ARGS)
	$(BIN)/python fuzz/coverage.py $(FUZZ_BUILD) $(FUZZ_CORPUS) $(FUZZ_BUILD)/seeds

# CI: a short session with a fixed seed, from the seeds and the committed
# regression corpus (copied: CI's finds are not kept), 75 s of fuzzing.
fuzz-ci: fuzz-build
	rm -rf $(FUZZ_BUILD)/ci-corpus && mkdir -p $(FUZZ_BUILD)/ci-corpus
	cp fuzz/regression/* $(FUZZ_BUILD)/ci-corpus/
	$(MAKE) --no-print-directory fuzz FUZZ_TIME=75 FUZZ_SEED=1 FUZZ_CORPUS=$(FUZZ_BUILD)/ci-corpus

# fuzz/regression/ (committed, replayed by tests/test_scanner_safety.py on every
# test run): libFuzzer's merge of the corpus, the fewest inputs that reach all
# the coverage it found.
fuzz-regression: fuzz-build
	rm -rf fuzz/regression.new && mkdir -p fuzz/regression.new
	$(SANITIZE) $(BIN)/python fuzz/scanner.py -merge=1 -use_value_profile=0 fuzz/regression.new fuzz/regression $(FUZZ_CORPUS)
	rm -rf fuzz/regression && mv fuzz/regression.new fuzz/regression

fuzz-coverage: fuzz-build
	$(BIN)/python fuzz/coverage.py $(FUZZ_BUILD) $(FUZZ_CORPUS) $(FUZZ_BUILD)/seeds

# The C extension's tests (tables, mutants, fuzz findings, the compiled rules)
# against the sanitized build, each line in a buffer of exactly its length.
SANITIZED_TESTS = tests/test_pings.py tests/test_tiers_agree.py tests/test_fixture_pings.py tests/test_scanner_safety.py tests/test_compiled.py
test-sanitized: fuzz-build
	for variant in sse2 portable; do \
		SANITIZED_SCANNER=$$variant $(SANITIZE) $(BIN)/python -m pytest -q -p sanitized -p no:cacheprovider $(SANITIZED_TESTS) || exit 1; \
	done

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(DEMO) site build dist src/*.egg-info src/crash_aggregates/*.so
