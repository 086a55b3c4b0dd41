#!/usr/bin/env bash
# The main job: install the toolkit and run the demo on the local platform (no AWS account).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/python-env.sh
. scripts/python-env.sh
python3 -m pip install -q --disable-pip-version-check -e .
if pipeline demo --help >/dev/null 2>&1; then
    exec pipeline demo "$@"
fi
pipeline validate
pipeline deploy orders --env dev --dry-run
