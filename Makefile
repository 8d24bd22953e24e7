# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install the lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
STAMP := $(VENV)/.installed

export DO_NOT_TRACK := 1
export SAGEMAKER_VALIDATE_ROLE := false

.PHONY: demo test test-fast bench lint lock clean setup aws-smoke synth

setup: $(STAMP)

# Re-installs only when the lock or the package metadata changed (cache-friendly).
$(STAMP): requirements.lock setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip install --python $(PY) --require-hashes --compile-bytecode -r requirements.lock
	$(VENV)/bin/uv pip install --python $(PY) --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cdp demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --nbmake tests notebooks

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow" tests

bench: $(STAMP)
	$(PY) -m bench

# The CDK app's cloud assembly in cdk.out/ (both cdk-nag packs run; no Docker needed to synthesise):
#   make synth SYNTH_ARGS="-c connectionArn=arn:aws:codeconnections:... -c repository=owner/name"
synth: $(STAMP)
	PYTHONPATH=$(CURDIR) $(PY) -m infra --outdir cdk.out $(SYNTH_ARGS)

# A real AWS sandbox account (credentials in the environment, the CDK stacks deployed): one small pipeline,
# register, promote, endpoint, invoke, then delete what it created. SMOKE_ARGS=--dry-run: read-only checks.
aws-smoke: $(STAMP)
	CDP_BACKEND=aws SAGEMAKER_VALIDATE_ROLE=true PYTHONPATH=$(CURDIR) $(PY) -m infra.smoke $(SMOKE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check app cdp features pipelines training inference monitoring engagement infra tests bench
	$(VENV)/bin/ruff format --check app cdp features pipelines training inference monitoring engagement infra tests bench
	PYTHONPATH=$(CURDIR) $(VENV)/bin/lint-imports --no-cache

lock:
	@test -x $(VENV)/bin/uv || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(VENV)/bin/uv pip compile requirements.in -o requirements.lock --python-version 3.11 --generate-hashes

clean:
	rm -rf $(VENV) .cdp .pytest_cache .hypothesis
