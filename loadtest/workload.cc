#include "loadtest/workload.h"

#include <cmath>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "format/tokenizer.h"
#include "nlohmann/json.hpp"

namespace qsl::loadtest {

absl::StatusOr<LengthDist> LengthDist::Parse(const std::string& spec) {
  LengthDist d;
  d.spec_ = spec;
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  auto number = [&](const std::string& s, double* out) {
    return absl::SimpleAtod(s, out) && std::isfinite(*out) && *out >= 0;
  };
  bool ok = false;
  if (parts.size() == 1) {
    d.kind_ = Kind::kFixed;
    ok = number(parts[0], &d.a_) && d.a_ >= 1;
  } else if (parts.size() == 3 && (parts[0] == "uniform" || parts[0] == "normal")) {
    d.kind_ = parts[0] == "uniform" ? Kind::kUniform : Kind::kNormal;
    ok = number(parts[1], &d.a_) && number(parts[2], &d.b_) &&
         (d.kind_ == Kind::kNormal || d.a_ <= d.b_);
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "length distribution \"", spec, "\": expected N, uniform:MIN:MAX or normal:MEAN:STD"));
  }
  return d;
}

int32_t LengthDist::Sample(std::mt19937_64& rng) const {
  double v = a_;
  if (kind_ == Kind::kUniform) v = std::uniform_real_distribution<double>(a_, b_)(rng);
  if (kind_ == Kind::kNormal) v = std::normal_distribution<double>(a_, b_)(rng);
  return std::max<int32_t>(1, static_cast<int32_t>(std::lround(v)));
}

namespace {

absl::StatusOr<std::vector<std::string>> ReadPrompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the prompts file"));
  std::vector<std::string> prompts;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    if (line.front() == '{') {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("prompt") || !j["prompt"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", n, ": a JSON line needs a string \"prompt\""));
      }
      prompts.push_back(j["prompt"].get<std::string>());
    } else {
      prompts.push_back(line);
    }
  }
  if (prompts.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no prompts"));
  return prompts;
}

// Prompts of sampled token lengths, cut in turn from the file's text (tokenized as one stream).
absl::StatusOr<std::vector<std::string>> CutPrompts(const std::vector<std::string>& lines,
                                                    const WorkloadOptions& o,
                                                    std::mt19937_64& rng) {
  if (o.tokenizer.empty()) {
    return absl::InvalidArgumentError("--prompt-tokens needs --tokenizer (a tokenizer.model)");
  }
  QSL_ASSIGN_OR_RETURN(LengthDist dist, LengthDist::Parse(o.prompt_tokens));
  QSL_ASSIGN_OR_RETURN(auto tok, Tokenizer::FromFile(o.tokenizer));
  std::vector<int32_t> stream;
  for (const std::string& l : lines) {
    std::vector<int32_t> ids = tok->Encode(l + "\n", false);
    stream.insert(stream.end(), ids.begin(), ids.end());
  }
  std::vector<std::string> prompts;
  size_t pos = 0;
  for (size_t i = 0; i < o.count; ++i) {
    // The server adds BOS to a text prompt: one token of the sampled length is its.
    const size_t len = static_cast<size_t>(std::max(1, dist.Sample(rng) - 1));
    if (len > stream.size()) {
      return absl::InvalidArgumentError(absl::StrCat(o.prompts_file, " has ", stream.size(),
                                                     " tokens, fewer than a prompt of ", len));
    }
    if (pos + len > stream.size()) pos = 0;
    prompts.push_back(tok->Decode({stream.begin() + pos, stream.begin() + pos + len}));
    pos += len;
  }
  return prompts;
}

}  // namespace

absl::StatusOr<std::vector<LoadRequest>> BuildWorkload(const WorkloadOptions& o) {
  QSL_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadPrompts(o.prompts_file));
  QSL_ASSIGN_OR_RETURN(LengthDist out, LengthDist::Parse(o.output_tokens));
  std::mt19937_64 rng(o.seed);
  std::vector<std::string> prompts = lines;
  if (!o.prompt_tokens.empty()) {
    QSL_ASSIGN_OR_RETURN(prompts, CutPrompts(lines, o, rng));
  }
  std::vector<LoadRequest> requests;
  for (size_t i = 0; i < o.count; ++i) {
    requests.push_back({prompts[i % prompts.size()], out.Sample(rng)});
  }
  return requests;
}

std::vector<double> PoissonArrivals(double rate, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(rate);
  std::vector<double> t(n);
  double now = 0;
  for (size_t i = 0; i < n; ++i) {
    t[i] = now;
    now += gap(rng);
  }
  return t;
}

}  // namespace qsl::loadtest
