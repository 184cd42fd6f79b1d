#!/usr/bin/env bash
# Single-stream decode speed of `qsl generate` against llama.cpp's llama-bench at the same thread
# count, on pairs of (packed qsl model, GGUF) of equal bits per weight. The runs are interleaved
# (qsl, llama-bench, next pair, ..., then the next repetition) so that background load on a shared
# machine hits both alike; prints every run and the medians as a Markdown table.
#
# usage: loadtest/decode_compare.sh REPS TOKENS QSL_MODEL:GGUF [QSL_MODEL:GGUF ...]
#   e.g. loadtest/decode_compare.sh 3 128 /tmp/peers/tl-w8a8.qsl:/tmp/peers/tl-q8_0.gguf
# Environment: QSL_BIN (build/tools/qsl), LLAMA_BENCH ($TMPDIR/peers/llama.cpp/build/bin/llama-bench),
# THREADS (default: nproc). qsl's pool takes one thread per CPU it may run on, so with fewer
# THREADS than CPUs both programs run under `taskset -c 0-(THREADS-1)`.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=$1 tokens=$2
shift 2
qsl=${QSL_BIN:-build/tools/qsl}
bench=${LLAMA_BENCH:-${TMPDIR:-/tmp}/peers/llama.cpp/build/bin/llama-bench}
threads=${THREADS:-$(nproc)}
pin=()
if ((threads < $(nproc))); then
  pin=(taskset -c "0-$((threads - 1))")
elif ((threads > $(nproc))); then
  echo "THREADS=$threads is more than the $(nproc) CPUs this shell may use" >&2
  exit 1
fi
prompt="The history of the integer matrix engine begins with a simple observation about memory"
declare -A runs

for ((r = 1; r <= reps; ++r)); do
  for pair in "$@"; do
    model=${pair%%:*} gguf=${pair#*:}
    # qsl logs "... decode N tok/s" on stderr once the request is done.
    q=$("${pin[@]}" "$qsl" generate --model "$model" --devices cpu --prompt "$prompt" --max-tokens "$tokens" \
          --temperature 0 --ignore-eos 2>&1 >/dev/null | sed -n 's/.*decode \([0-9.]*\) tok\/s.*/\1/p')
    [[ -n $q ]] || { echo "qsl generate printed no decode rate for $model" >&2; exit 1; }
    l=$("${pin[@]}" "$bench" -m "$gguf" -p 0 -n "$tokens" -t "$threads" -r 1 -o jsonl 2>/dev/null |
          sed -n 's/.*"avg_ts": *\([0-9.]*\).*/\1/p' | head -1)
    [[ -n $l ]] || { echo "llama-bench printed no rate for $gguf" >&2; exit 1; }
    echo "rep $r: $(basename "$model") $q tok/s, $(basename "$gguf") $l tok/s (load average $(cut -d' ' -f1 /proc/loadavg))"
    runs[$pair]+="$q $l;"
  done
done

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo
echo "| qsl model | qsl decode tok/s | GGUF | llama-bench tg tok/s | qsl / llama.cpp |"
echo "|---|---:|---|---:|---:|"
for pair in "$@"; do
  model=${pair%%:*} gguf=${pair#*:}
  q=$(tr ';' '\n' <<<"${runs[$pair]}" | awk 'NF {print $1}' | median)
  l=$(tr ';' '\n' <<<"${runs[$pair]}" | awk 'NF {print $2}' | median)
  printf '| %s | %.1f | %s | %.1f | %.2fx |\n' "$(basename "$model")" "$q" "$(basename "$gguf")" \
    "$l" "$(awk -v a="$q" -v b="$l" 'BEGIN {print a / b}')"
done
