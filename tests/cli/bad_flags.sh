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
expect_error "not a directory" generate --model /nonexistent --prompt x
expect_error "--max-tokens" generate --model "$SRC/models/qsl-tiny-llama" --prompt x --max-tokens -3
expect_error "--temperature" generate --model "$SRC/models/qsl-tiny-llama" --prompt x --temperature abc
expect_error "cannot open" eval --model "$SRC/models/qsl-tiny-llama" --text /nonexistent.txt
expect_error "required" eval --text "$SRC/data/dev.txt"
expect_error "--kv-dtype" eval --model "$SRC/models/qsl-tiny-llama" --text "$SRC/data/dev.txt" --kv-dtype int4
expect_error "unknown command 'bogus-subcommand'" bogus-subcommand
exit $fail
