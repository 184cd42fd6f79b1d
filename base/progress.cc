#include "base/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace qsl {

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(std::max<int64_t>(total, 1)),
      tty_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Set(int64_t done) {
  done_ = std::min(done, total_);
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
  } else {
    if (done_ == total_) return;  // Finish() prints the final line
    const int decile = static_cast<int>(done_ * 10 / total_);
    if (decile == last_decile_) return;
    last_decile_ = decile;
  }
  last_draw_ = now;
  Draw(false);
}

void ProgressBar::Finish() {
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

void ProgressBar::Draw(bool final) {
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = static_cast<double>(done_) / static_cast<double>(total_);
  const double rate = secs > 0 ? static_cast<double>(done_) / secs : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
  constexpr int kWidth = 28;
  const int fill = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(fill), '#');
  bar.resize(kWidth, '.');
  // A rate over the first half second says more about when the bar started than about the work;
  // %.3g keeps slow rates (a layer a minute) from printing as 0.0.
  char rate_text[32] = "--";
  if (secs >= 0.5 || final) std::snprintf(rate_text, sizeof(rate_text), "%.3g", rate);
  std::fprintf(stderr, "%s%s [%s] %3d%% %lld/%lld %s  %s %s/s  %s %.0fs%s%s%s",
               tty_ ? "\r" : "", label_.c_str(), bar.c_str(), static_cast<int>(frac * 100),
               static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(),
               rate_text, unit_.c_str(), final ? "elapsed" : "eta", final ? secs : eta,
               suffix_.empty() ? "" : "  ", suffix_.c_str(), (final || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace qsl
