// A progress bar with rate and ETA for long CLI work (eval, quantize), written to stderr.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qsl {

class ProgressBar {
 public:
  // `unit` names what is counted ("tok", "layer"). Output is throttled to ~10 updates/s; when
  // stderr is not a terminal, a plain line is printed every 10% instead of redrawing.
  ProgressBar(std::string label, int64_t total, std::string unit);
  ~ProgressBar();

  void Add(int64_t n) { Set(done_ + n); }
  void Set(int64_t done);
  // Appends a short status (e.g. the running perplexity) to the bar.
  void SetSuffix(std::string suffix) { suffix_ = std::move(suffix); }
  void Finish();

 private:
  void Draw(bool final);
  std::string label_, unit_, suffix_;
  int64_t total_, done_ = 0;
  int last_decile_ = -1;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace qsl
