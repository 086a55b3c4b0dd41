#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then runs the quality
# gates (lint, types, import contracts) and every test tier. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/python-env.sh
. scripts/python-env.sh

if ! command -v buildah >/dev/null 2>&1 || ! command -v shellcheck >/dev/null 2>&1 \
        || ! command -v haproxy >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1 \
        || ! command -v chromium >/dev/null 2>&1; then
    echo "== installing buildah (image builds for the ECR tests), shellcheck (workflow lint), haproxy and wrk (bench/router.py), chromium (the HTML report's rendering test)" >&2
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah shellcheck haproxy wrk chromium >/dev/null
    else
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah shellcheck haproxy wrk chromium >/dev/null
    fi
fi

# Tests make real git commits in throwaway repositories: give them an identity if the
# machine has none (the user's own configuration wins when present).
if [ -z "$(git config user.name 2>/dev/null)" ]; then
    export GIT_AUTHOR_NAME="pipeline tests" GIT_COMMITTER_NAME="pipeline tests"
    export GIT_AUTHOR_EMAIL="tests@pipeline.invalid" GIT_COMMITTER_EMAIL="tests@pipeline.invalid"
fi

echo "== installing the toolkit with its dev extra" >&2
python3 -m pip install -q --disable-pip-version-check -e ".[dev]"

echo "== ruff" >&2
python3 -m ruff check pipeline tests bench
echo "== mypy --strict" >&2
python3 -m mypy
echo "== import contracts" >&2
lint-imports
echo "== pytest" >&2
# Two workers (the machine has two cores); a test file runs whole on one worker, so its
# module-scoped planes and servers are started once. Much of the suite waits on real
# processes, so this roughly halves the run.
python3 -m pytest -n 2 --dist loadfile "$@"
