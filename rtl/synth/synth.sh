#!/usr/bin/env bash
# Synthesizes the MPE with Yosys `synth_xilinx -family xcup` (UltraScale+) for the
# co-simulation configs, the whole design and the array alone, and prints the resource table of
# docs/rtl.md. Not part of the test suite (minutes per config).
#   rtl/synth/synth.sh [OUT_DIR]      (default build/synth; one log and stat file per run)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath -m "${1:-$root/build/synth}")
mkdir -p "$out"
cd "$root/rtl"
sources=(mpe_pkg.sv mpe_top.sv mpe_regs.sv mpe_fifo.sv mpe_load.sv mpe_wbuf.sv mpe_abuf.sv
         mpe_exec.sv mpe_array.sv mpe_accum.sv mpe_store.sv)

# chparam arguments for `top` from an MpeConfig file (all parameters, or only ROWS/COLS/bits).
chparams() {
  cmake -DJSON="$1" -P synth/mpe_params.cmake 2>&1 |
    grep -E "$2" | sed 's/^\([A-Z_]*\)=\(.*\)$/-set \1 \2/' | tr '\n' ' '
}

# Sums the cells of a flattened `stat` into LUT / FF / DSP / BRAM / URAM / LUTRAM / CARRY.
summarize() {
  awk '
    /LUT[1-6] /            { lut += $2 }
    /FD[RSCP]E /           { ff += $2 }
    /DSP48E2 /             { dsp += $2 }
    /RAMB18E2 /            { bram += $2 / 2 }
    /RAMB36E2 /            { bram += $2 }
    /URAM288 /             { uram += $2 }
    /RAM(32|64|128|256)[XM]/ { lutram += $2 }
    /CARRY[48] /           { carry += $2 }
    END { printf "%d|%d|%d|%g|%d|%d|%d\n", lut, ff, dsp, bram, uram, lutram, carry }' "$1"
}

echo "| config | part | LUT | FF | DSP48E2 | BRAM36 | URAM | LUTRAM | CARRY | Yosys s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for config in mpe4x4 mpe8x8 mpe16x16; do
  json="$root/rtl/configs/$config.json"
  for part in array top; do
    if [ "$part" = array ]; then
      top=mpe_array
      params=$(chparams "$json" '^(ROWS|COLS|ACT_BITS|WEIGHT_BITS|ACC_BITS)=')
    else
      top=mpe_top
      params=$(chparams "$json" '=')
    fi
    log="$out/$config.$part.log"
    start=$(date +%s)
    yosys -q -l "$log" -p "read_verilog -sv ${sources[*]}; chparam $params $top;
                           synth_xilinx -family xcup -flatten -top $top;
                           tee -o $out/$config.$part.stat stat" >/dev/null
    secs=$(( $(date +%s) - start ))
    IFS='|' read -r lut ff dsp bram uram lutram carry < <(summarize "$out/$config.$part.stat")
    echo "| $config | $top | $lut | $ff | $dsp | $bram | $uram | $lutram | $carry | $secs |"
  done
done
