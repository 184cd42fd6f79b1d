// The sim report: model shapes, and that its projections are the arithmetic they claim to be
// (the targets themselves are reported by `qsl devices --report`, not asserted).
#include "accel/sim_report.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qsl {
namespace {

using ::testing::HasSubstr;

TEST(SimReport, PresetAndKeyValueShapes) {
  auto t = ParseModelShape("tinyllama-1.1b");
  ASSERT_TRUE(t.ok());
  auto same = ParseModelShape("hidden=2048,layers=22,mlp=5632,heads=32,kv-heads=4,vocab=32000");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->hidden, t->hidden);
  EXPECT_EQ(same->dim_per_head(), 64);
  const std::vector<LinearShape> l = LinearShapes(*t);
  ASSERT_EQ(l.size(), 8u);
  EXPECT_EQ(l[1].n, 256);  // k_proj: 4 KV heads of 64
  EXPECT_EQ(l[6].k, 5632);  // down_proj
  EXPECT_EQ(l[7].count, 1);  // lm_head
  auto no_head = ParseModelShape("hidden=64,layers=2,mlp=128,heads=4,kv-heads=4,vocab=100,lm-head=0");
  ASSERT_TRUE(no_head.ok());
  EXPECT_EQ(LinearShapes(*no_head).size(), 7u);
}

TEST(SimReport, ShapeErrors) {
  EXPECT_THAT(std::string(ParseModelShape("hidden=64").status().message()), HasSubstr("needs"));
  EXPECT_THAT(std::string(ParseModelShape("hidden=6x").status().message()),
              HasSubstr("key=non-negative-integer"));
  EXPECT_THAT(std::string(ParseModelShape("width=3").status().message()), HasSubstr("unknown key"));
  EXPECT_THAT(std::string(ParseModelShape("hidden=64,layers=1,mlp=8,heads=5,kv-heads=5,vocab=9")
                              .status().message()),
              HasSubstr("head-dim"));
}

TEST(SimReport, ProjectionsAreConsistent) {
  auto shape = ParseModelShape("qsl-tiny-llama");
  ASSERT_TRUE(shape.ok());
  ReportOptions o;
  o.decode_batches = {1, 4};
  o.prompt_tokens = 64;
  const MpeConfig& c = DefaultMpeConfig();
  auto r = BuildSimReport(c, *shape, o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->decode.size(), 2u);
  for (const PhaseReport* p : {&r->decode[0], &r->decode[1], &r->prefill}) {
    EXPECT_DOUBLE_EQ(p->seconds, p->total.cycles / c.clock_hz());
    EXPECT_DOUBLE_EQ(p->tokens_per_s, p->tokens / p->seconds);
    EXPECT_DOUBLE_EQ(p->mem_roofline_tps,
                     p->tokens * c.mem_bytes_per_cycle() * c.clock_hz() / p->weight_bytes);
    // A card never beats its rooflines.
    EXPECT_LE(p->tokens_per_s, p->mem_roofline_tps * (1 + 1e-12));
    EXPECT_LE(p->tokens_per_s, p->mac_roofline_tps * (1 + 1e-12));
    EXPECT_EQ(p->total.cycles, p->total.head_cycles + p->total.stream_rows +
                                   p->total.stall_weights + p->total.stall_acts +
                                   p->total.stall_acc + p->total.stall_dispatch +
                                   p->total.tail_cycles);
  }
  // W4 moves fewer weight bytes than W8 for the same shapes.
  ReportOptions w4 = o;
  w4.scheme = WeightScheme::kW4;
  auto r4 = BuildSimReport(c, *shape, w4);
  ASSERT_TRUE(r4.ok());
  EXPECT_LT(r4->decode[0].weight_bytes, r->decode[0].weight_bytes);
  const std::string text = FormatSimReport(*r, true);
  EXPECT_THAT(text, HasSubstr("lm_head"));
  EXPECT_THAT(text, HasSubstr("of roofline"));
}

TEST(SimReport, BadOptions) {
  auto shape = ParseModelShape("qsl-tiny-llama");
  ReportOptions o;
  o.prompt_tokens = 0;
  EXPECT_FALSE(BuildSimReport(DefaultMpeConfig(), *shape, o).ok());
  o.prompt_tokens = 8;
  o.decode_batches = {0};
  EXPECT_FALSE(BuildSimReport(DefaultMpeConfig(), *shape, o).ok());
}

}  // namespace
}  // namespace qsl
