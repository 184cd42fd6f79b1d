#!/usr/bin/env bash
# Builds the quality table of docs/quality.md and its plot docs/quality.svg: quantizes
# models/qsl-tiny-llama in every configuration below (calibrating on data/calib.txt only) and
# scores data/dev.txt with `qsl eval`, once with the reference fp32 KV rows and once through
# the engine's int8 paged KV cache.
#
#   scripts/quality_table.sh           the table (about 15 minutes on 2 cores)
#   scripts/quality_table.sh render    the table and plot again from the last run's results
#   scripts/quality_table.sh select    the SmoothQuant alpha choice: a few alphas scored on the
#                                      tail of calib.txt that calibration does not read (never dev)
#
# QSL (default build/tools/qsl) is the binary; results and packed files go to QSL_QUALITY_DIR
# (default build/quality).
set -euo pipefail
cd "$(dirname "$0")/.."

QSL=${QSL:-build/tools/qsl}
OUT=${QSL_QUALITY_DIR:-build/quality}
MODEL=models/qsl-tiny-llama
CALIB=data/calib.txt
DEV=data/dev.txt
# Chosen by `select` (docs/quality.md, "Choices").
W8_SMOOTH=0.5
W4_SMOOTH=0.5

[ -x "$QSL" ] || { echo "quality_table: $QSL not built (cmake --build build --target qsl)" >&2; exit 1; }
mkdir -p "$OUT"

# "label|quantize flags" (empty flags: the fp32 checkpoint itself).
TABLE_ROWS=(
  "fp32|"
  "W8A8 RTN|--scheme w8a8"
  "W8A8 SmoothQuant|--scheme w8a8 --smooth $W8_SMOOTH --calib $CALIB"
  "W4A8 g128 RTN|--scheme w4a8 --group 128 --method rtn"
  "W4A8 g128 RTN + SmoothQuant|--scheme w4a8 --group 128 --method rtn --smooth $W4_SMOOTH --calib $CALIB"
  "W4A8 g128 AWQ|--scheme w4a8 --group 128 --method awq --calib $CALIB"
  "W4A8 g128 AWQ + SmoothQuant|--scheme w4a8 --group 128 --method awq --smooth $W4_SMOOTH --calib $CALIB"
  "W4A8 g128 GPTQ|--scheme w4a8 --group 128 --method gptq --calib $CALIB"
  "W4A8 g128 GPTQ + SmoothQuant|--scheme w4a8 --group 128 --method gptq --smooth $W4_SMOOTH --calib $CALIB"
)

# The packed file of a row (quantizing it unless flags are empty); prints its path.
quantize() {
  local slug=$1 flags=$2
  if [ -z "$flags" ]; then
    echo "$MODEL"
    return
  fi
  # shellcheck disable=SC2086  # flags are words
  "$QSL" quantize --model "$MODEL" --out "$OUT/$slug.qsl" $flags >"$OUT/$slug.quantize.log" 2>&1 ||
    { cat "$OUT/$slug.quantize.log" >&2; exit 1; }
  echo "$OUT/$slug.qsl"
}

# Perplexity of a model on a text file; extra args go to qsl eval.
perplexity() {
  local model=$1 text=$2
  shift 2
  "$QSL" eval --model "$model" --text "$text" "$@" 2>/dev/null | sed -n 's/^perplexity \([0-9.]*\) .*/\1/p'
}

slug_of() { echo "$1" | tr 'A-Z' 'a-z' | sed 's/ + /+/g; s/ /-/g'; }

table() {
  local tsv=$OUT/results.tsv
  printf 'label\tbits\tbytes\tppl\tppl_kv_int8\tquantize\teval\n' >"$tsv"
  for row in "${TABLE_ROWS[@]}"; do
    local label=${row%%|*} flags=${row#*|} slug bits bytes model cmd
    slug=$(slug_of "$label")
    echo "quality_table: $label" >&2
    model=$(quantize "$slug" "$flags")
    if [ -z "$flags" ]; then
      bits=16  # the bf16 checkpoint, computed in fp32
      bytes=$(stat -c %s "$MODEL/model.safetensors")
      cmd=""
    else
      bits=$(sed -n 's/.*linear weights \([0-9.]*\) bits.*/\1/p' "$OUT/$slug.quantize.log")
      bytes=$(stat -c %s "$model")
      cmd="qsl quantize --model $MODEL --out $slug.qsl $flags"
    fi
    local eval_model=${model/#$OUT\//}
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$bits" "$bytes" \
      "$(perplexity "$model" "$DEV")" "$(perplexity "$model" "$DEV" --kv-dtype int8)" "$cmd" \
      "qsl eval --model $eval_model --text $DEV [--kv-dtype int8]" >>"$tsv"
  done
  render
}

# Debian's python3 (scripts/setup.sh installs python3-matplotlib for it).
render() { /usr/bin/python3 scripts/plot_quality.py "$OUT/results.tsv" docs/quality.md docs/quality.svg; }

# SmoothQuant alpha candidates scored on calib.txt's last 150 kB (calibration reads its first
# 65536 tokens, about 210 kB).
select_alpha() {
  local heldout=$OUT/calib_heldout.txt
  tail -c 150000 "$CALIB" >"$heldout"
  printf 'fp32\t-\t%s\n' "$(perplexity "$MODEL" "$heldout")"
  for scheme in w8a8 w4a8; do
    for alpha in 0.25 0.5 0.75; do
      local slug=select-$scheme-$alpha
      local model
      model=$(quantize "$slug" "--scheme $scheme --smooth $alpha --calib $CALIB")
      printf '%s\t%s\t%s\n' "$scheme" "$alpha" "$(perplexity "$model" "$heldout")"
    done
  done
}

case "${1:-table}" in
  table) table ;;
  render) render ;;
  select) select_alpha ;;
  *) echo "usage: $0 [table|render|select]" >&2; exit 2 ;;
esac
