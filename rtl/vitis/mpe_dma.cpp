// mpe_dma: the datamover kernel beside the MPE (Vitis HLS C++; built only in the Vitis flow of
// docs/rtl.md, not here). It streams the command batch to the MPE and serves the MPE's card-
// memory traffic: read requests {beats, address} become bursts from `mem`, MPE_MEM_BEATS beats
// per packet (lane mask in TUSER), and accumulator rows {address, row} are written to `mem32`
// and acknowledged. Addresses are device addresses (xrt::bo::address()); `mem_base` is the
// address of the buffer bound to `mem`/`mem32`, so any HBM buffer is reached by offset.
// The number of reads and row writes is known from the commands themselves, so every loop has a
// trip count and the kernel finishes with the batch.
#include <ap_axi_sdata.h>
#include <ap_int.h>
#include <hls_stream.h>

#include "mpe_config.h"  // generated: MPE_MEM_BEATS, MPE_COLS

using Beat = ap_uint<512>;
using Cmd = qdma_axis<128, 0, 0, 0>;
using RdData = qdma_axis<512 * MPE_MEM_BEATS, MPE_MEM_BEATS, 0, 0>;
using WrRow = qdma_axis<32 * MPE_COLS + 64, 0, 0, 0>;
using Ack = qdma_axis<8, 0, 0, 0>;

static void SendCommands(const ap_uint<128>* cmd, unsigned n, hls::stream<Cmd>& out,
                         hls::stream<unsigned>& reads, hls::stream<unsigned>& rows) {
  unsigned nreads = 0, nrows = 0;
  for (unsigned i = 0; i < n; ++i) {
#pragma HLS PIPELINE II = 1
    const ap_uint<128> c = cmd[i];
    const unsigned op = c.range(3, 0);
    if (op == 1 || op == 2) ++nreads;           // LOAD_W, LOAD_A
    if (op == 4) nrows += c.range(31, 16);      // DRAIN rows
    Cmd p;
    p.set_data(c);
    p.set_keep(-1);
    p.set_last(i + 1 == n);
    out.write(p);
  }
  reads.write(nreads);
  rows.write(nrows);
}

static void ServeReads(const Beat* mem, ap_uint<64> base, hls::stream<unsigned>& count,
                       hls::stream<Cmd>& req, hls::stream<RdData>& out) {
  const unsigned n = count.read();
  for (unsigned r = 0; r < n; ++r) {
    const ap_uint<128> q = req.read().get_data();
    const ap_uint<64> first = (q.range(63, 0) - base) / 64;
    const unsigned beats = q.range(79, 64);
    for (unsigned b = 0; b < beats; b += MPE_MEM_BEATS) {
#pragma HLS PIPELINE II = 1
      ap_uint<512 * MPE_MEM_BEATS> data = 0;
      ap_uint<MPE_MEM_BEATS> lanes = 0;
      for (unsigned l = 0; l < MPE_MEM_BEATS; ++l) {
        if (b + l < beats) {
          data.range(512 * l + 511, 512 * l) = mem[first + b + l];
          lanes[l] = 1;
        }
      }
      RdData p;
      p.set_data(data);
      p.set_user(lanes);
      p.set_keep(-1);
      p.set_last(b + MPE_MEM_BEATS >= beats);
      out.write(p);
    }
  }
}

static void ServeWrites(ap_uint<32>* mem32, ap_uint<64> base, hls::stream<unsigned>& count,
                        hls::stream<WrRow>& in, hls::stream<Ack>& ack) {
  const unsigned n = count.read();
  for (unsigned w = 0; w < n; ++w) {
    const ap_uint<32 * MPE_COLS + 64> p = in.read().get_data();
    const ap_uint<64> word = (p.range(32 * MPE_COLS + 63, 32 * MPE_COLS) - base) / 4;
    for (unsigned c = 0; c < MPE_COLS; ++c) {
#pragma HLS PIPELINE II = 1
      mem32[word + c] = p.range(32 * c + 31, 32 * c);
    }
    Ack a;
    a.set_data(1);
    a.set_keep(-1);
    a.set_last(w + 1 == n);
    ack.write(a);
  }
}

extern "C" void mpe_dma(const ap_uint<128>* cmd, unsigned num_cmds, const Beat* mem,
                        ap_uint<32>* mem32, ap_uint<64> mem_base, hls::stream<Cmd>& cmd_out,
                        hls::stream<Cmd>& rdreq_in, hls::stream<RdData>& rddata_out,
                        hls::stream<WrRow>& wr_in, hls::stream<Ack>& wrack_out) {
#pragma HLS INTERFACE m_axi port = cmd bundle = gmem_cmd
#pragma HLS INTERFACE m_axi port = mem bundle = gmem max_read_burst_length = 64
#pragma HLS INTERFACE m_axi port = mem32 bundle = gmem32
#pragma HLS INTERFACE axis port = cmd_out
#pragma HLS INTERFACE axis port = rdreq_in
#pragma HLS INTERFACE axis port = rddata_out
#pragma HLS INTERFACE axis port = wr_in
#pragma HLS INTERFACE axis port = wrack_out
#pragma HLS DATAFLOW
  hls::stream<unsigned> reads("reads"), rows("rows");
  SendCommands(cmd, num_cmds, cmd_out, reads, rows);
  ServeReads(mem, mem_base, reads, rdreq_in, rddata_out);
  ServeWrites(mem32, mem_base, rows, wr_in, wrack_out);
}
