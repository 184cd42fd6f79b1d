#!/usr/bin/env bash
# Builds the libFuzzer target for the safetensors header parser with clang (ASan + UBSan) and
# runs it for $1 seconds (default 60). Crashes are written to build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
OUT=build-fuzz
mkdir -p "$OUT/corpus"
command -v clang++ >/dev/null || { echo "fuzz: clang++ not installed (apt-get install clang)"; exit 1; }
ABSL_LIBS=$(pkg-config --libs absl_status absl_statusor absl_strings absl_str_format)
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I. format/safetensors_fuzz.cc format/safetensors.cc format/dtype.cc base/mapped_file.cc \
  $ABSL_LIBS -o "$OUT/safetensors_fuzz"
# Seed corpus: the headers of the bundled checkpoints.
for f in models/*/model.safetensors tests/models/*/*.safetensors; do
  head -c 16384 "$f" > "$OUT/corpus/$(echo "$f" | tr '/' '_')"
done
"$OUT/safetensors_fuzz" -max_total_time="$SECS" -max_len=16384 -artifact_prefix="$OUT/" \
  "$OUT/corpus"
