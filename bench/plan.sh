#!/usr/bin/env bash
# Planning benchmark (see bench/plan.py). Run `make bench` to build first.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/plan.py "$@"
