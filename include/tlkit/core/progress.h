#pragma once
// A progress bar for epochs: batches done, named metrics (loss, acc, lr), rate and ETA.
// On a terminal it redraws one line on stderr; otherwise (a log file, CI) it prints a plain line
// every `plain_every` percent so logs stay readable. Never writes to stdout.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace tlkit {

class ProgressBar {
 public:
  using Metrics = std::vector<std::pair<std::string, double>>;

  // total: number of steps (0 = unknown). stream: where to draw (stderr by default).
  ProgressBar(std::string label, std::int64_t total, std::FILE* stream = stderr);
  ~ProgressBar();

  void update(std::int64_t done, const Metrics& metrics = {});
  void finish(const Metrics& metrics = {});
  void set_enabled(bool enabled) { enabled_ = enabled; }
  bool is_terminal() const { return terminal_; }

  // The text of one bar line, exposed for tests.
  std::string render(std::int64_t done, const Metrics& metrics, double elapsed_seconds) const;

 private:
  std::string label_;
  std::int64_t total_;
  std::FILE* stream_;
  bool terminal_;
  bool enabled_ = true;
  bool finished_ = false;
  int last_plain_percent_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// "1h02m", "3m05s", "12.3s".
std::string format_duration(double seconds);

}  // namespace tlkit
