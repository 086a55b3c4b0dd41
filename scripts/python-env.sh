# shellcheck shell=bash
# Sourced by scripts/demo.sh and scripts/test.sh: choose the Python environment to install into.
#
# An active virtual environment ($VIRTUAL_ENV) is used as it is. Otherwise the project's own
# `.venv` is created on first use and reused after that, so the scripts also work where the
# distribution's python3 is "externally managed" (PEP 668: Debian 12+, Ubuntu 23.04+ refuse
# `pip install` into the system interpreter). Set PIPELINE_VENV=/some/dir to put it elsewhere.
# After sourcing, `python3` and the `pipeline` console script resolve to that environment.

if [ -n "${VIRTUAL_ENV:-}" ]; then
    echo "== using the active virtual environment $VIRTUAL_ENV" >&2
else
    venv="${PIPELINE_VENV:-$PWD/.venv}"
    if [ ! -x "$venv/bin/python3" ]; then
        base_python="$(command -v python3 || true)"
        if [ -z "$base_python" ]; then
            echo "error: no python3 on PATH: install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
            exit 2
        fi
        echo "== creating the project's virtual environment $venv (from $base_python)" >&2
        if ! "$base_python" -m venv "$venv" 2>/dev/null; then
            # Debian and Ubuntu ship venv's pip bootstrap separately (python3-venv).
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                echo "== installing python3-venv (Debian's venv support)" >&2
                DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
                rm -rf "$venv"
                "$base_python" -m venv "$venv"
            else
                echo "error: $base_python cannot create a virtual environment: install python3-venv" \
                    "(sudo apt-get install python3-venv), or activate a virtual environment first" >&2
                exit 2
            fi
        fi
    else
        echo "== using the project's virtual environment $venv" >&2
    fi
    export VIRTUAL_ENV="$venv"
    export PATH="$venv/bin:$PATH"
    hash -r
fi
