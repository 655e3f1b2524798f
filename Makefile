# vorstream.firewall — build, test, demo.
#   make demo   the main job on the built-in default (see README)
#   make test   every test (what .ci/run runs)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
CARGO_HOME ?= $(HOME)/.cargo
export PATH := $(VENV)/bin:$(CARGO_HOME)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/build/collections
export ANSIBLE_NOCOLOR := 1
export ANSIBLE_HOST_KEY_CHECKING := False
ARCHES ?= x86_64 aarch64
MODULES := plan apply verify
RUST_TARGETS := $(foreach a,$(ARCHES),$(a)-unknown-linux-musl)
HOST_ARCH := $(shell uname -m)
APT_PACKAGES := python3-venv firewalld ufw nftables openssh-server openssh-client iproute2 dbus-daemon socat shellcheck chromium fonts-dejavu-core dnsmasq-base openssl
LAB_INV := -i tests/lab/inventory.ini -i tests/lab/demo.yml
# The demo's egress: restricted, and the lab's OIDC provider beside Entra ID (tests/lab/idp.py vars)
DEMO_EGRESS := -e host_firewall_egress=restricted -e @build/lab-idp.json
export ANSIBLE_FORKS ?= 16

.PHONY: setup setup-apt setup-venv setup-rust setup-cloud build link test test-unit test-cli test-cloud test-ansible test-lab test-tarball test-ansible-core demo bench collection clean lab-up lab-down

## setup: everything a fresh Debian 12 machine needs (idempotent)
setup: setup-apt setup-venv setup-rust link

setup-apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "apt: installing $$missing"; \
	  tests/lab/lab.sh deps >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

$(VENV)/.stamp: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

setup-venv: $(VENV)/.stamp

## setup-cloud: what the cloud tests need: a local EC2 emulator (moto) and the SDKs
##   (tests/cloud/requirements.txt), and the cloud collections amazon.aws and azure.azcollection
##   unpacked from the pinned `ansible` package's wheel into build/cloud-collections (only PyPI
##   is needed, no Galaxy)
ANSIBLE_PACKAGE := ansible==11.13.0
CLOUD_COLLECTIONS := $(ROOT)/build/cloud-collections
$(VENV)/.cloud-stamp: tests/cloud/requirements.txt $(VENV)/.stamp
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/cloud/requirements.txt
	touch $@

$(CLOUD_COLLECTIONS)/.stamp: $(VENV)/.stamp
	rm -rf $(CLOUD_COLLECTIONS) && mkdir -p $(CLOUD_COLLECTIONS) $(ROOT)/build/wheels
	$(VENV)/bin/pip download -q --disable-pip-version-check --no-deps --find-links $(ROOT)/build/wheels -d $(ROOT)/build/wheels $(ANSIBLE_PACKAGE)
	cd $(CLOUD_COLLECTIONS) && $(VENV)/bin/python -c 'import glob, zipfile; \
	  z = zipfile.ZipFile(sorted(glob.glob("$(ROOT)/build/wheels/$(subst ==,-,$(ANSIBLE_PACKAGE))-*.whl"))[-1]); \
	  z.extractall(".", [n for n in z.namelist() if n.startswith(("ansible_collections/amazon/aws/", "ansible_collections/azure/azcollection/"))])'
	touch $@

setup-cloud: $(VENV)/.cloud-stamp $(CLOUD_COLLECTIONS)/.stamp

setup-rust:
	@for t in $(RUST_TARGETS); do rustup target list --installed | grep -qx $$t || rustup target add $$t; done
	@for c in clippy rustfmt; do rustup component list --installed | grep -q "^$$c" || rustup component add $$c; done

## link: make the source tree importable as the collection vorstream.firewall
link:
	@mkdir -p build/collections/ansible_collections/vorstream
	@ln -sfn $(ROOT) build/collections/ansible_collections/vorstream/firewall

## build: static musl binaries: bin/vorfw (host arch), plugins/modules/__bin__/<module>_<arch>,
##        roles/entra_egress/files/vorfw-entra_<arch> (the refresher installed on hosts)
build: setup-rust link
	@# The module binaries are built on their own, so that cargo's feature unification cannot
	@# hand them the feed's network stack (vorfw-entra's `fetch` feature, which the refresher and
	@# the CLI enable): they read the Entra ID state with the feed's pure part only.
	cd rust && for t in $(RUST_TARGETS); do \
	  cargo build --release --locked --target $$t -q --workspace $(foreach m,$(MODULES),--exclude vorfw-mod-$(m)) && \
	  cargo build --release --locked --target $$t -q $(foreach m,$(MODULES),-p vorfw-mod-$(m)); done
	mkdir -p bin plugins/modules/__bin__
	for a in $(ARCHES); do for m in $(MODULES); do \
	  install -m 0755 rust/target/$$a-unknown-linux-musl/release/$$m plugins/modules/__bin__/$${m}_$$a; done; done
	for a in $(ARCHES); do install -m 0755 rust/target/$$a-unknown-linux-musl/release/vorfw-entra roles/entra_egress/files/vorfw-entra_$$a; done
	install -m 0755 rust/target/$(HOST_ARCH)-unknown-linux-musl/release/vorfw bin/vorfw

## test: every test (the lab tests bring the lab up themselves and take it down at the end)
test: setup build test-unit test-cli test-cloud test-ansible test-tarball test-ansible-core test-lab

SHARED_TAGS := $(ROOT)/../shared/data/servicetags

test-unit:
	cd rust && cargo test --locked -q --workspace
	cd rust && cargo fmt --all -- --check
	cd rust && cargo clippy --locked -q --workspace --all-targets -- -D warnings
	cd rust && cargo clippy --locked -q -p vorfw-entra --no-default-features -- -D warnings
	cd rust && cargo clippy --locked -q -p vorfw-oidc --no-default-features -- -D warnings
	@if [ -d $(SHARED_TAGS) ]; then \
	  echo "checking the reduced Microsoft files against the originals in $(SHARED_TAGS)"; \
	  cd rust && cargo test --locked -q -p vorfw-entra --test real_files -- --ignored; \
	else echo "$(SHARED_TAGS) absent: the reduced Microsoft files in tests/fixtures are used as they are"; fi

test-cli:
	$(VENV)/bin/pytest -q tests/cli

## test-cloud: the cloud_security_groups role against moto on 127.0.0.1 (AWS) and the Azure
##   templates and module arguments offline; nothing leaves the machine
test-cloud: setup-cloud build
	$(VENV)/bin/pytest -q tests/cloud

test-ansible:
	$(VENV)/bin/pytest -q tests/ansible

test-lab:
	$(VENV)/bin/pytest -q --durations=20 tests/integration

lab-up: setup
	tests/lab/lab.sh up

lab-down:
	tests/lab/lab.sh down

## demo: the main job on the built-in default: the lab, converged and proven with packets
demo: setup build
	@echo "== planning the example inventories"
	@for inv in examples/single-tier.ini examples/multi-tier.yml; do bin/vorfw plan -i $$inv --format summary | tail -1 | sed "s|^# |$$inv: |"; done
	@echo "== bringing a fresh lab up (12 hosts, each with its own firewall, sshd and disk state)"
	tests/lab/lab.sh up --fresh
	@echo "== restricted egress; sign-in through Entra ID (the lab's service-tag feed) and the lab's OIDC provider (DNS)"
	mkdir -p build && tests/lab/idp.py vars > build/lab-idp.json && cat build/lab-idp.json
	@echo "== ansible-playbook playbooks/site.yml"
	ansible-playbook $(LAB_INV) $(DEMO_EGRESS) playbooks/site.yml
	@echo "== proving every flow with real packets"
	ansible-playbook $(LAB_INV) $(DEMO_EGRESS) playbooks/verify.yml -e verify_probe_management=true -e verify_report=$(ROOT)/build/lab-report.html
	@echo "== proving sign-in: the OIDC clients fetch the provider's discovery document, no other host can"
	ansible-playbook $(LAB_INV) $(DEMO_EGRESS) tests/lab/signin.yml
	@echo "== the sign-off report (open it in a browser): $(ROOT)/build/lab-report.html"

$(VENV)/.bench-stamp: bench/requirements.txt $(VENV)/.stamp
	$(VENV)/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt
	touch $@

## bench: planning (10,000 hosts); the report of 1,000 hosts in headless Chromium; the lab against
##        ansible.posix.firewalld; 500 peers on ufw and nftables; 10,000-peer sets on each backend;
##        the 12-host lab and a 100-host lab (site.yml, verify covering and full, lab up/down)
bench: setup build $(VENV)/.bench-stamp
	bench/plan.sh
	$(VENV)/bin/python bench/plan_playbook.py
	$(VENV)/bin/python bench/report.py
	tests/lab/lab.sh up
	$(VENV)/bin/python bench/firewalld.py
	$(VENV)/bin/python bench/scale.py
	$(VENV)/bin/python bench/entra.py
	$(VENV)/bin/python bench/backends.py
	$(VENV)/bin/python bench/fleet_lab.py

## collection: the Galaxy tarball, with the built module binaries inside
collection: build
	rm -rf build/dist && mkdir -p build/dist
	ansible-galaxy collection build --force --output-path build/dist .

## test-ansible-core: the Ansible tests on the oldest ansible-core meta/runtime.yml admits and
##   the newest this machine's Python runs (each in its own venv under build/)
ANSIBLE_CORE_VERSIONS := 2.15.13 2.19.14
test-ansible-core: setup build
	@for v in $(ANSIBLE_CORE_VERSIONS); do \
	  d=$(ROOT)/build/ansible-core-$$v; \
	  [ -x $$d/bin/ansible-playbook ] || { rm -rf $$d && python3 -m venv $$d && \
	    $$d/bin/pip install -q --disable-pip-version-check ansible-core==$$v; } || exit 1; \
	  echo "== the Ansible tests on ansible-core $$v"; \
	  VORFW_ANSIBLE_BIN=$$d/bin VORFW_ANSIBLE_CORE=$$v $(VENV)/bin/pytest -q tests/ansible \
	    --ignore tests/ansible/test_sanity.py --ignore tests/ansible/test_lint.py || exit 1; \
	done

## test-tarball: the Ansible tests again, against the collection installed from the tarball
INSTALLED := $(ROOT)/build/installed
test-tarball: collection
	rm -rf $(INSTALLED) && mkdir -p $(INSTALLED)
	ANSIBLE_COLLECTIONS_PATH=$(INSTALLED) ansible-galaxy collection install --offline --force -p $(INSTALLED) build/dist/vorstream-firewall-*.tar.gz
	VORFW_COLLECTIONS_PATH=$(INSTALLED) $(VENV)/bin/pytest -q tests/ansible \
	  --ignore tests/ansible/test_sanity.py --ignore tests/ansible/test_lint.py

clean:
	rm -rf rust/target bin plugins/modules/__bin__ build roles/entra_egress/files/vorfw-entra_*
