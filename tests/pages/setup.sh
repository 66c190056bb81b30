#!/usr/bin/env bash
# What the browser tests (tests/pages) need on a fresh machine; idempotent, quick when all is there.
#   - Debian's chromium (the tests drive it headless; Playwright's own browser downloads are not used)
#   - the Python playwright package, pinned, in the project's virtualenv
# Usage: tests/pages/setup.sh [PYTHON]   (default: .venv/bin/python of the repository)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${1:-$ROOT/.venv/bin/python}"
PLAYWRIGHT_PIN="playwright==1.65.2"

if ! command -v chromium >/dev/null 2>&1 || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/pages/setup.sh: chromium or fonts-noto-cjk missing; run as root or: sudo apt-get install -y chromium fonts-noto-cjk" >&2
    exit 1
  fi
  echo "installing chromium and CJK fonts (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
fi

want="${PLAYWRIGHT_PIN#*==}"
have="$("$PY" -c 'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  echo "installing $PLAYWRIGHT_PIN"
  "$PY" -m pip install -q "$PLAYWRIGHT_PIN"   # never `playwright install`: the tests use /usr/bin/chromium
fi
