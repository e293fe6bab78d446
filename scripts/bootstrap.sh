#!/usr/bin/env bash
# Set up everything the app and its tests need on a fresh machine: the virtualenv with the project and its test
# extras, Debian's Chromium and zbar for the browser and QR tests (when run as root, or with sudo), and the
# compiled translation catalogs. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

want_system=${1:-}

apt_install() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
  [ -e /usr/lib/x86_64-linux-gnu/libzbar.so.0 ] || [ -e /usr/lib/aarch64-linux-gnu/libzbar.so.0 ] || missing+=(libzbar0)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "bootstrap: need root (or sudo) to install: ${missing[*]}" >&2; return 1
    fi
  fi
  echo "bootstrap: installing ${missing[*]} (apt)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "$want_system" = "--with-system" ]; then
  apt_install
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -e "$stamp" ]; then
  echo "bootstrap: installing Python packages (pip)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# Compiled catalogs (.mo) are build output, not committed.
if ls portal/translations/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then
  .venv/bin/pybabel -q compile -d portal/translations  # -q is a global option: before the command
fi
