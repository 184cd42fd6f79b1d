#!/usr/bin/env bash
# Bad CLI input gets a clear error and a non-zero exit, never a crash.
set -uo pipefail
QSL=$1 SRC=$2
fail=0
expect_error() {  # expect_error "<substring>" args...
  local want=$1; shift
  local out rc
  out=$("$QSL" "$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: qsl $* -> rc=$rc"; echo "$out" | head -5; fail=1
  else
    echo "ok: qsl $* -> $(head -1 <<<"$out")"
  fi
}
expect_error "missing config.json" generate --model "$SRC/data" --prompt x
expect_error "no such file or directory" generate --model /nonexistent --prompt x
expect_error "--max-tokens" generate --model "$SRC/models/qsl-tiny-llama" --prompt x --max-tokens -3
expect_error "--temperature" generate --model "$SRC/models/qsl-tiny-llama" --prompt x --temperature abc
expect_error "cannot open" eval --model "$SRC/models/qsl-tiny-llama" --text /nonexistent.txt
expect_error "required" eval --text "$SRC/data/dev.txt"
expect_error "--kv-dtype" eval --model "$SRC/models/qsl-tiny-llama" --text "$SRC/data/dev.txt" --kv-dtype int4
expect_error "unknown command 'bogus-subcommand'" bogus-subcommand
expect_error "needs a quantized model" generate --model "$SRC/models/qsl-tiny-llama" --prompt x --devices sim:1
expect_error "needs a quantized model" serve --model "$SRC/models/qsl-tiny-llama" --devices sim:2 --port 0
expect_error "QSLPACK" inspect "$SRC/models/qsl-tiny-llama/config.json"
expect_error "--scheme" quantize --model "$SRC/models/qsl-tiny-llama" --out /tmp/qsl-bad-flags.qsl --scheme w3a8
expect_error "model shape" devices --report --model-shape nonsense
exit $fail
