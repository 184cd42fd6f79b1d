#!/usr/bin/env bash
# Side-by-side load test of `qsl serve` and llama.cpp's llama-server on the same weights: both
# servers up, the levels interleaved (qsl, then llama-server, per level) so background load on a
# shared machine hits both alike. Writes one JSON per server and level, a table per run, and a
# plot (loadtest/plot_latency.py).
#
# usage: loadtest/peer_compare.sh QSL_MODEL QSL_DEVICES GGUF OUT_DIR [LEVELS] [REQUESTS] [OUT_TOKENS]
#   e.g. loadtest/peer_compare.sh models/qsl-tiny-llama cpu $TMPDIR/peers/tiny-f16.gguf /tmp/cmp
# Environment: QSL_BIN (build/tools/qsl), LOADTEST (build/loadtest/qsl-loadtest), LLAMA_SERVER
# ($TMPDIR/peers/llama.cpp/build/bin/llama-server), PROMPT_TOKENS (uniform:32:128).
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1 devices=$2 gguf=$3 out=$4
levels=${5:-1,4,16,32} requests=${6:-64} out_tokens=${7:-64}
qsl=${QSL_BIN:-build/tools/qsl}
loadtest=${LOADTEST:-build/loadtest/qsl-loadtest}
llama=${LLAMA_SERVER:-${TMPDIR:-/tmp}/peers/llama.cpp/build/bin/llama-server}
prompt_tokens=${PROMPT_TOKENS:-uniform:32:128}
max_streams=$(tr , '\n' <<<"$levels" | sort -n | tail -1)
mkdir -p "$out"

"$qsl" serve --model "$model" --devices "$devices" --host 127.0.0.1 --port 0 --grpc-port 0 \
  --max-num-seqs "$max_streams" >"$out/qsl.out" 2>"$out/qsl.err" &
qsl_pid=$!
llama_port=$("${PYTHON:-/usr/bin/python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
llama_url=http://127.0.0.1:$llama_port
# llama-server splits its context over the slots: give every slot the model's 1024 tokens.
"$llama" -m "$gguf" --host 127.0.0.1 --port "$llama_port" -np "$max_streams" -c $((1024 * max_streams)) \
  >"$out/llama.out" 2>"$out/llama.err" &
llama_pid=$!
trap 'kill $qsl_pid $llama_pid 2>/dev/null; wait 2>/dev/null' EXIT

for _ in $(seq 600); do grep -q "listening http=" "$out/qsl.out" && break; sleep 0.1; done
qsl_url=http://$(sed -n 's/.*listening http=\([^ ]*\) .*/\1/p' "$out/qsl.out")
for _ in $(seq 600); do curl -sf "$llama_url/health" >/dev/null && break; sleep 0.1; done
curl -sf "$llama_url/health" >/dev/null || { echo "llama-server did not start: $out/llama.err" >&2; exit 1; }

common=(--prompts data/dev.txt --tokenizer models/qsl-tiny-llama/tokenizer.model
        --prompt-tokens "$prompt_tokens" --output-tokens "$out_tokens" --requests "$requests"
        --seed 1)
for c in ${levels//,/ }; do
  "$loadtest" --url "$qsl_url" "${common[@]}" --concurrency "$c" --label qsl \
    --json "$out/qsl-c$c.json" | tee -a "$out/qsl.table"
  "$loadtest" --url "$llama_url" "${common[@]}" --concurrency "$c" --label llama-server \
    --json "$out/llama-c$c.json" | tee -a "$out/llama.table"
done
"${PYTHON:-/usr/bin/python3}" loadtest/plot_latency.py "$out"/qsl-c*.json "$out"/llama-c*.json -o "$out/latency.png"
