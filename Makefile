# The two commands of the README: `make run` and `make test`. Both install what they need.
VENV ?= .venv
# make run: a simulated call every DEMO_CALLS seconds while the demo operator is available (0: none)
DEMO_CALLS ?= 15
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: run test fuzz lint typecheck bench soak clean

$(PY):
	scripts/ensure-python.sh $(VENV)

$(VENV)/.run-deps: pyproject.toml | $(PY)
	$(PIP) -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml scripts/install-test-system-deps.sh | $(PY)
	scripts/install-test-system-deps.sh
	$(PIP) -e '.[test]'
	touch $@

run: $(VENV)/.run-deps
	$(BIN)/voicemgmt demo
	$(BIN)/voicemgmt serve --demo-calls $(DEMO_CALLS)

test: $(VENV)/.test-deps lint typecheck
	$(BIN)/pytest

# make fuzz: the fuzz targets with many more examples (VM_FUZZ_EXAMPLES each; README "Tests and
# benchmarks"); the SIP corpus tests too, so that a crash kept as a corpus case is checked;
# then atheris, coverage-guided, ATHERIS_RUNS inputs per byte-level target
ATHERIS_RUNS ?= 200000
fuzz: $(VENV)/.test-deps
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz tests/sip/test_message.py tests/sip/test_sdp_rtp.py tests/sip/test_digest.py
	for target in sip sdp digest rtp dtmf json; do \
		$(PY) -m tests.fuzz.atheris_run $$target -runs=$(ATHERIS_RUNS) -print_final_stats=1 || exit 1; \
	done

lint: $(VENV)/.test-deps
	$(BIN)/ruff check src tests bench packages
	$(BIN)/ruff format --check src tests bench packages

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

bench: $(VENV)/.test-deps
	$(PIP) -e '.[test,bench]'
	$(PY) bench/token_api.py
	$(PY) bench/acd.py
	$(PY) bench/acd_end_to_end.py
	$(PY) bench/banner_latency.py
	$(PY) bench/crm_latency.py
	$(PY) bench/sip_setup.py
	$(PY) bench/sip_media.py
	$(PY) bench/webhooks.py
	$(PY) bench/crash.py
	$(PY) bench/coordination.py

# make soak: a simulated day of a 500-operator account (~100,000 calls) compressed into MINUTES
# (README "Tests and benchmarks"); not part of make bench: it takes that long
MINUTES ?= 60
soak: $(VENV)/.test-deps
	$(PY) bench/soak.py --minutes $(MINUTES)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis packages/cnx/dist
