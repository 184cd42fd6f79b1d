#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what is missing, build, and run the bundled
# model end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
BUILD_DIR=${QSL_BUILD_DIR:-build}
QSL="$BUILD_DIR/tools/qsl"

echo "== generate (fp32 reference, bundled qsl-tiny-llama) =="
"$QSL" generate --model models/qsl-tiny-llama --prompt "The :mod:\`json\` module" \
  --max-tokens 64 --temperature 0
