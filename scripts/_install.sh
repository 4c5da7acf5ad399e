# Sourced by scripts/run and scripts/test: a virtualenv with the pinned requirements, and the
# Debian packages the tests need (ffmpeg makes test media, chromium runs the browser tests).
python3 -m venv .venv 2>/dev/null || python3 -m venv .venv
if ! .venv/bin/python -c "import django, tensorflow, channels, celery, playwright" 2>/dev/null \
   || [ requirements.txt -nt .venv/.installed ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  touch .venv/.installed
fi
