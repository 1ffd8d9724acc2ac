#!/usr/bin/env bash
# Create .venv with Python >= 3.12 and install the pinned requirements into it.
# Usage: requirements/bootstrap.sh [base|dev]    (what `make install` runs)
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${1:-dev}"
lock="requirements/${profile}.txt"
venv=".venv"
stamp="$venv/.installed-${profile}"

python_ok() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.14 python3.13 python3.12 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$(command -v "$candidate")"; then
      command -v "$candidate"
      return 0
    fi
  done
  local root
  root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
  for candidate in $(ls -d "$root"/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -V -r); do
    if python_ok "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -x "$venv/bin/python" ] || ! python_ok "$venv/bin/python"; then
  if ! python=$(find_python); then
    echo "ArteFact needs Python 3.12 or newer, and none was found on PATH or under pyenv." >&2
    echo "Install one (e.g. 'pyenv install 3.12', or your system's python3.12 package), or" >&2
    echo "point PYTHON at it: make install PYTHON=/path/to/python3.12" >&2
    exit 1
  fi
  echo "Creating $venv with $python ($("$python" --version))"
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi

# The browser tests (tests/browser) drive Debian's Chromium rather than a browser downloaded by
# Playwright: one that the system's package manager keeps patched, and no download at test time.
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Chromium for the browser tests (apt-get install chromium)"
    if apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; then
      return 0
    fi
    echo "apt-get could not install chromium; the browser tests will be skipped (and fail where CI=true)." >&2
  else
    echo "The browser tests need Chromium at /usr/bin/chromium: without it they are skipped (and fail" \
      "where CI=true); install it as root with 'apt-get install chromium' (Debian/Ubuntu)." >&2
  fi
}

if [ "$profile" = dev ]; then
  ensure_chromium
fi

if [ -f "$stamp" ] && [ "$stamp" -nt "$lock" ]; then
  exit 0
fi

start=$(date +%s)
if [ ! -x "$venv/bin/uv" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "$(grep -E '^uv==' requirements/dev.txt)"
fi
# uv installs a few GB of wheels (torch with its CUDA libraries) in seconds from its cache.
# --compile-bytecode: uv writes no .pyc files by default, and where PYTHONDONTWRITEBYTECODE is
# set Python writes none either, so every process would compile torch and transformers from
# source at each start (import 9.5 s against 3.7 s on a 2-core VM; the compile takes ~17 s once).
"$venv/bin/uv" pip sync --python "$venv/bin/python" --compile-bytecode "$lock"
if [ "$profile" = base ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "$(grep -E '^uv==' requirements/dev.txt)"
fi
rm -f "$venv"/.installed-*
touch "$stamp"
echo "Installed $lock into $venv in $(( $(date +%s) - start )) s."
