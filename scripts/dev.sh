#!/usr/bin/env bash
# Set up a virtual environment for parcoord_nb and either open the quickstart
# notebook in JupyterLab (`lab`) or run the whole test suite (`test`).
#
#   bash scripts/dev.sh lab          # .venv, then JupyterLab on notebooks/01-quickstart.ipynb
#   bash scripts/dev.sh test [ARGS]  # .venv with the test and dask extras, Chromium, then pytest ARGS
#
# PYTHON picks the interpreter (default: python3, which must be 3.11 or newer);
# VENV the environment's folder (default: .venv).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
cmd="${1:-}"
shift || true

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"parcoord_nb needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]} (set PYTHON=...)")
PY

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".$1"
}

case "$cmd" in
    lab)
        setup ""
        # The extension is loaded in every kernel of this environment, as on Binder.
        "$VENV/bin/python" -m parcoord_nb.install_profile --sys-prefix
        exec "$VENV/bin/jupyter" lab notebooks/01-quickstart.ipynb "$@"
        ;;
    test)
        setup "[test,dask]"
        bash .ci/install-browser.sh
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: bash scripts/dev.sh lab | test [pytest args]" >&2
        exit 2
        ;;
esac
