#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install what is missing, build, quantize the bundled
# model to W4A8, serve it on one simulated MPE card and answer a real /v1/completions request.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
BUILD_DIR=${QSL_BUILD_DIR:-build}
QSL="$BUILD_DIR/tools/qsl"
MODEL="$BUILD_DIR/qsl-tiny-llama-w4a8.qsl"

echo "== quantize: bundled qsl-tiny-llama -> W4A8 g128 (GPTQ, calibrated on data/calib.txt) =="
"$QSL" quantize --model models/qsl-tiny-llama --out "$MODEL" --scheme w4a8 --method gptq \
  --calib data/calib.txt
"$QSL" inspect "$MODEL" | sed -n 1,12p  # sed reads it all: no SIGPIPE under pipefail

echo "== serve on sim:1 (the simulated MPE card) =="
log=$(mktemp)
"$QSL" serve --model "$MODEL" --devices sim:1 --host 127.0.0.1 --port 0 --grpc-port 0 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's/^qsl serve: listening http=[0-9.]*:\([0-9]*\) .*/\1/p' "$log")
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; echo "qsl serve exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$log"; echo "qsl serve did not start" >&2; exit 1; }
echo "listening on 127.0.0.1:$port"

echo "== POST /v1/completions =="
curl -sS --fail-with-body "http://127.0.0.1:$port/v1/completions" \
  -H 'Content-Type: application/json' \
  -d '{"model": "qsl-tiny-llama-w4a8", "prompt": "The :mod:`json` module", "max_tokens": 48, "temperature": 0}'
echo
echo "== card metrics =="
curl -sS "http://127.0.0.1:$port/metrics" | grep -E '^qsl_card_(up|utilization_ratio)' || true

kill -TERM "$server"
wait "$server"
trap - EXIT
rm -f "$log"
