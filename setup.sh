#!/usr/bin/env bash
# One entry point for a fresh machine: build .venv (once), then run what was asked.
#   ./setup.sh demo     -> set up, then train the built-in default and print the accuracy
#   ./setup.sh test     -> set up, then run the test suite
#   ./setup.sh          -> set up only
# Why a script and not just `pip install -e .`: lava-nc 0.10 declares Python <3.11, so it has to be
# installed without its Python bound (and its dependencies pinned by hand), and torch must come
# from the CPU wheel this machine's pip is configured with rather than a multi-GB CUDA resolve.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv
STAMP=$VENV/.neurohebb-setup
WANT=$(cat setup.sh pyproject.toml requirements/*.txt | sha256sum | cut -c1-16)

if [[ ! -f $STAMP || $(cat "$STAMP") != "$WANT" ]]; then
  echo "neurohebb: setting up $VENV (first run takes a few minutes)" >&2
  [[ -x $VENV/bin/python ]] || "$PY" -m venv "$VENV"
  # pip warns about every index folder in a machine's pip config that does not exist (once per
  # package): harmless, so those lines alone are dropped; every other message, and pip's exit
  # status, comes through unchanged.
  IGNORED="^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.$"
  PIP() { "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v -E "$IGNORED" >&2 || true); }
  PIP --upgrade pip
  PIP -r requirements/base.txt
  # lava-nc: declared for Python 3.10 only; its dependencies are in requirements/base.txt.
  PIP --no-deps --ignore-requires-python -r requirements/lava.txt
  # setuptools reports every editable install with an "Editable installation" notice (about
  # folders named like the package in the working directory: here that folder is the package).
  PYTHONWARNINGS="ignore:Editable installation" PIP --no-deps -e .
  echo "$WANT" > "$STAMP"
fi

case "${1:-}" in
  demo) shift; exec "$VENV/bin/neurohebb" demo "$@" ;;
  test) shift; exec "$VENV/bin/python" -m pytest "$@" ;;
  "") echo "neurohebb: environment ready in $VENV (activate with: source $VENV/bin/activate)" ;;
  *) echo "usage: ./setup.sh [demo|test] [args...]" >&2; exit 2 ;;
esac
