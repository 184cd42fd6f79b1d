#!/usr/bin/env bash
# Runs one node integration test file against the real `qsl serve`. The npm clients come from
# scripts/setup.sh (`npm ci` in tests/clients); without them this fails and says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
clients="$here/../clients/node_modules"
if [ ! -d "$clients" ]; then
  echo "error: $clients is missing: run scripts/setup.sh" >&2
  exit 1
fi
exec node --test --test-reporter=spec "$here/$1"
