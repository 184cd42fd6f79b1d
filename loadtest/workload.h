// What the load generator sends: prompts from a file (used as they are, or cut to token lengths
// drawn from a distribution), output lengths from a distribution, and open-loop arrival times.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qsl::loadtest {

// "N", "uniform:A:B" or "normal:MEAN:STD" (token counts; samples are rounded and at least 1).
class LengthDist {
 public:
  static absl::StatusOr<LengthDist> Parse(const std::string& spec);
  int32_t Sample(std::mt19937_64& rng) const;
  const std::string& spec() const { return spec_; }

 private:
  enum class Kind { kFixed, kUniform, kNormal };
  Kind kind_ = Kind::kFixed;
  double a_ = 0, b_ = 0;
  std::string spec_;
};

struct LoadRequest {
  std::string prompt;
  int32_t max_tokens = 0;
};

struct WorkloadOptions {
  std::string prompts_file;     // one prompt per line, or JSONL objects with "prompt"
  std::string prompt_tokens;    // optional LengthDist: cut prompts from the file's text
  std::string tokenizer;        // tokenizer.model, needed with prompt_tokens
  std::string output_tokens = "128";
  size_t count = 0;
  uint64_t seed = 0;
};

absl::StatusOr<std::vector<LoadRequest>> BuildWorkload(const WorkloadOptions& options);

// Offsets (seconds from the start) of `n` arrivals of a Poisson process with `rate` per second.
std::vector<double> PoissonArrivals(double rate, size_t n, uint64_t seed);

}  // namespace qsl::loadtest
