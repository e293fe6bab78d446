#!/usr/bin/env bash
# Set up what the app needs on a fresh machine: the virtualenv with the project (an editable install, which also
# compiles the translation catalogs — setup.py). `--test` adds the test extras (pytest, Playwright, schemathesis,
# hypothesis…); `--with-system` adds Debian's Chromium and zbar for the browser and QR tests (when run as root, or
# with sudo). Safe to run again: each step is skipped when already done.
#   scripts/bootstrap.sh                        what `make serve` needs (runtime packages only)
#   scripts/bootstrap.sh --test --with-system   what `make test` needs
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=""
want_system=""
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --with-system) want_system=1 ;;
    *) echo "bootstrap: unknown option $arg (use --test, --with-system)" >&2; exit 2 ;;
  esac
done

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

if [ -n "$want_system" ]; then
  apt_install
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi

# One stamp per kind of install and version of the package's metadata; the test install includes the runtime one.
version=$(cat pyproject.toml setup.py | sha256sum | cut -c1-16)
test_stamp=.venv/.installed-test-$version
runtime_stamp=.venv/.installed-runtime-$version
if [ -n "$want_test" ]; then
  spec=".[test]" stamp=$test_stamp kind="runtime and test"
else
  spec="." stamp=$runtime_stamp kind="runtime"
fi
if [ ! -e "$stamp" ] && [ ! -e "$test_stamp" ]; then
  echo "bootstrap: installing the $kind Python packages (pip)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e "$spec"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
