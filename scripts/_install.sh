# Sourced by scripts/run and scripts/test (from the repository root): a virtualenv in .venv
# with the pinned requirements. The install is skipped when .venv/.installed records the same
# requirements.txt hash and interpreter, so repeated runs start in a second.
_py="${PYTHON:-}"
if [ -z "$_py" ]; then
  for _candidate in python3.11 python3; do
    if command -v "$_candidate" >/dev/null 2>&1; then _py="$_candidate"; break; fi
  done
fi
if [ ! -x .venv/bin/python ]; then
  if [ -z "$_py" ]; then echo "error: Python 3.11 (python3.11 or python3) is needed" >&2; exit 2; fi
  echo "Creating .venv with $("$_py" --version 2>&1) ..."
  "$_py" -m venv .venv
fi
_stamp="$(sha256sum requirements.txt | cut -d' ' -f1) $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])')"
_present='import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("django", "tensorflow", "channels", "celery", "daphne", "playwright", "pytest")))'
if [ "$(cat .venv/.installed 2>/dev/null)" != "$_stamp" ] || ! .venv/bin/python -c "$_present"; then
  echo "Installing the Python packages into .venv (the first time takes a few minutes) ..."
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$_stamp" > .venv/.installed
fi
unset _py _candidate _stamp _present
