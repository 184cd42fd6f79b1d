// The `qsl` binary end to end: generate prints transformers' greedy continuation, eval reproduces
// transformers' dev.txt perplexity, also through the engine's paged KV cache.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "format/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

const std::string kSrc = QSL_SOURCE_DIR;
const std::string kQsl = std::string(QSL_BINARY_DIR) + "/tools/qsl";

// Runs a command, returns its stdout; *rc gets the exit status.
std::string RunCommand(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

nlohmann::json Reference() {
  std::ifstream in(kSrc + "/models/qsl-tiny-llama/reference_dev.json");
  return nlohmann::json::parse(in);
}

TEST(Cli, GenerateGreedyPrintsTransformersContinuation) {
  const auto ref = Reference();
  auto tok = Tokenizer::FromFile(kSrc + "/models/qsl-tiny-llama/tokenizer.model");
  ASSERT_TRUE(tok.ok());
  ASSERT_GE(ref["cases"].size(), 5u);
  for (const auto& c : ref["cases"]) {
    const std::string text = c["text"].get<std::string>();
    std::vector<int32_t> all = c["prompt_ids"].get<std::vector<int32_t>>();
    for (int32_t id : c["greedy_64_ids"].get<std::vector<int32_t>>()) all.push_back(id);
    const std::string prompt_text = (*tok)->Decode(c["prompt_ids"].get<std::vector<int32_t>>());
    const std::string want = text + (*tok)->Decode(all).substr(prompt_text.size()) + "\n";
    // The prompt goes through a file so shell quoting cannot change it.
    const std::string prompt_file = ::testing::TempDir() + "/qsl_cli_prompt.txt";
    std::ofstream(prompt_file, std::ios::binary) << text;
    int rc = 0;
    const std::string got =
        RunCommand(kQsl + " generate --model " + kSrc + "/models/qsl-tiny-llama --prompt \"$(cat " +
                prompt_file + ")\" --max-tokens 64 --temperature 0 2>/dev/null",
            &rc);
    EXPECT_EQ(rc, 0);
    // $(...) strips trailing newlines of the prompt; compare from the prompt's end onward.
    EXPECT_EQ(got.substr(got.size() - (want.size() - text.size())), want.substr(text.size()))
        << "prompt: " << text;
  }
}

TEST(Cli, EvalReproducesDevPerplexity) {
  int rc = 0;
  const std::string out = RunCommand(kQsl + " eval --model " + kSrc + "/models/qsl-tiny-llama --text " +
                                  kSrc + "/data/dev.txt 2>/dev/null",
                              &rc);
  ASSERT_EQ(rc, 0) << out;
  double ppl = 0;
  long long tokens = 0;
  ASSERT_EQ(std::sscanf(out.c_str(), "perplexity %lf over %lld tokens", &ppl, &tokens), 2) << out;
  const auto ref = Reference();
  const double want = ref["perplexity_fp32"].get<double>();
  std::printf("qsl eval: %.4f, transformers: %.4f\n", ppl, want);
  EXPECT_NEAR(ppl, want, want * 1e-3);
  EXPECT_EQ(tokens, ref["tokens"].get<long long>());
}

// Four windows of dev.txt: the paged cache in fp32 scores what the reference rows score, int8
// stays close (docs/quality.md has the full-file numbers).
TEST(Cli, EvalThroughThePagedKvCache) {
  auto ppl = [](const std::string& flags) {
    int rc = 0;
    const std::string out = RunCommand(kQsl + " eval --model " + kSrc +
                                           "/models/qsl-tiny-llama --text " + kSrc +
                                           "/data/dev.txt --max-windows 4 " + flags + " 2>/dev/null",
                                       &rc);
    EXPECT_EQ(rc, 0) << flags;
    double v = 0;
    EXPECT_EQ(std::sscanf(out.c_str(), "perplexity %lf", &v), 1) << out;
    return v;
  };
  const double rows = ppl(""), paged = ppl("--kv-dtype fp32"), int8 = ppl("--kv-dtype int8");
  ASSERT_GT(rows, 1.0);
  EXPECT_NEAR(paged, rows, rows * 1e-5);
  EXPECT_NEAR(int8, rows, rows * 5e-3);
}

// `qsl quantize --kv int8` is a default the engine takes from the file; a flag still wins.
TEST(Cli, PackedFileChoosesTheKvCacheDtype) {
  const std::string file = ::testing::TempDir() + "/kv-int8.qsl";
  int rc = 0;
  RunCommand(kQsl + " quantize --model " + kSrc + "/models/qsl-tiny-llama --scheme w8a8 --kv int8" +
                 " --out " + file + " 2>&1",
             &rc);
  ASSERT_EQ(rc, 0);
  auto kv_line = [&](const std::string& flags) {
    const std::string out = RunCommand(
        kQsl + " generate --model " + file + " --prompt Hi --max-tokens 2 " + flags + " 2>&1", &rc);
    EXPECT_EQ(rc, 0) << out;
    const size_t at = out.find("engine: KV cache");
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_NE(kv_line("").find(", int8,"), std::string::npos) << kv_line("");
  EXPECT_NE(kv_line("--kv-dtype fp16").find(", fp16,"), std::string::npos);
  std::remove(file.c_str());
}

}  // namespace
}  // namespace qsl
