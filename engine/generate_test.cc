// `qsl generate` (a separate process, one prompt at a time) against the engine in this process
// on every reference prompt of the bundled model: the CLI prints exactly the engine's text.
#include <cstdio>
#include <fstream>
#include <future>

#include "engine/engine.h"
#include "format/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace qsl {
namespace {

const std::string kSrc = QSL_SOURCE_DIR;
const std::string kQsl = std::string(QSL_BINARY_DIR) + "/tools/qsl";

std::string RunCommand(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *rc = pclose(p);
  return out;
}

// The engine's greedy completion of each text; all prompts submitted at once when `together`.
std::vector<std::string> EngineCompletions(Engine& e, const std::vector<std::string>& texts,
                                           int32_t max_tokens, bool together) {
  std::vector<std::string> out(texts.size());
  std::vector<std::promise<void>> done(texts.size());
  std::vector<std::future<void>> waits;
  for (auto& d : done) waits.push_back(d.get_future());
  for (size_t i = 0; i < texts.size(); ++i) {
    GenerationRequest r;
    r.prompt = e.tokenizer().Encode(texts[i], true);
    r.params.temperature = 0.0f;
    r.params.max_tokens = max_tokens;
    RequestCallbacks cb;
    cb.on_event = [&out, &done, i](const GenerationEvent& ev) {
      out[i] += ev.text;
      if (ev.finish.has_value()) done[i].set_value();
    };
    EXPECT_TRUE(e.Submit(std::move(r), std::move(cb)).ok());
    if (!together) waits[i].wait();
  }
  for (auto& w : waits) w.wait();
  return out;
}

TEST(Equivalence, QslGeneratePrintsTheEnginesCompletion) {
  std::ifstream in(kSrc + "/models/qsl-tiny-llama/reference_dev.json");
  const nlohmann::json ref = nlohmann::json::parse(in);
  const nlohmann::json& cases = ref["cases"];
  ASSERT_GE(cases.size(), 5u);
  std::vector<std::string> texts;
  for (const auto& c : cases) texts.push_back(c["text"].get<std::string>());

  const std::string model = kSrc + "/models/qsl-tiny-llama";
  EngineOptions o;
  o.model = model;
  o.kv_cache_mb = 64;
  auto engine = CreateEngine(o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  // The fp32 reference path is not batch-invariant (sgemm blocks by M): one prompt at a time.
  const std::vector<std::string> want = EngineCompletions(**engine, texts, 32, false);
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string prompt_file = ::testing::TempDir() + "/qsl_generate_prompt.txt";
    std::ofstream(prompt_file, std::ios::binary) << texts[i];
    int rc = 0;
    const std::string got = RunCommand(kQsl + " generate --model " + model + " --prompt-file " +
                                           prompt_file + " --max-tokens 32 --temperature 0 " +
                                           "--kv-cache-mb 64 2>/dev/null",
                                       &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(got, texts[i] + want[i] + "\n") << "prompt: " << texts[i];
    EXPECT_FALSE(want[i].empty());
  }
}

}  // namespace
}  // namespace qsl
