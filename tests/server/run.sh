#!/usr/bin/env bash
# Runs one node integration test file against the real `qsl serve`; exit 77 (CTest: skipped) when
# the npm clients are not installed (scripts/setup.sh runs `npm ci` in tests/clients).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
clients="$here/../clients/node_modules"
if [ ! -d "$clients" ]; then
  echo "skipped: $clients is missing (run scripts/setup.sh)" >&2
  exit 77
fi
exec node --test --test-reporter=spec "$here/$1"
