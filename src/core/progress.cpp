#include <tlkit/core/progress.h>

#include <cmath>
#include <sstream>

#include <unistd.h>

namespace tlkit {

std::string format_duration(double seconds) {
  char text[32];
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) {
    std::snprintf(text, sizeof(text), "%.1fs", seconds);
  } else if (seconds < 3600) {
    const int s = static_cast<int>(seconds);
    std::snprintf(text, sizeof(text), "%dm%02ds", s / 60, s % 60);
  } else {
    const int m = static_cast<int>(seconds / 60);
    std::snprintf(text, sizeof(text), "%dh%02dm", m / 60, m % 60);
  }
  return text;
}

ProgressBar::ProgressBar(std::string label, std::int64_t total, std::FILE* stream)
    : label_(std::move(label)),
      total_(total),
      stream_(stream),
      terminal_(::isatty(::fileno(stream)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (terminal_ && enabled_ && !finished_) std::fputc('\n', stream_);
}

std::string ProgressBar::render(std::int64_t done, const Metrics& metrics, double elapsed) const {
  std::ostringstream line;
  line << label_ << " ";
  if (total_ > 0) {
    constexpr int kWidth = 24;
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    const int filled = static_cast<int>(fraction * kWidth);
    line << "[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] " << done
         << "/" << total_;
  } else {
    line << done;
  }
  for (const auto& [name, value] : metrics) {
    char number[32];
    const double magnitude = std::fabs(value);
    std::snprintf(number, sizeof(number), (magnitude != 0 && magnitude < 1e-2) ? "%.2e" : "%.4f",
                  value);
    line << " " << name << "=" << number;
  }
  const double rate = elapsed > 0 ? done / elapsed : 0;
  if (rate > 0) {
    char text[32];
    std::snprintf(text, sizeof(text), " %.1f it/s", rate);
    line << text;
  }
  if (total_ > 0 && done < total_ && rate > 0)
    line << " ETA " << format_duration((total_ - done) / rate);
  if (total_ > 0 && done >= total_) line << " " << format_duration(elapsed);
  return line.str();
}

void ProgressBar::update(std::int64_t done, const Metrics& metrics) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  if (terminal_) {
    const bool last = total_ > 0 && done >= total_;
    if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::fprintf(stream_, "\r\033[K%s", render(done, metrics, elapsed).c_str());
    std::fflush(stream_);
    return;
  }
  // Not a terminal: a plain line at every 25% step.
  if (total_ <= 0) return;
  const int percent = static_cast<int>(100 * done / total_);
  if (percent / 25 == last_plain_percent_ / 25 && last_plain_percent_ >= 0) return;
  last_plain_percent_ = percent;
  if (done >= total_) return;  // finish() prints the final line
  std::fprintf(stream_, "%s\n", render(done, metrics, elapsed).c_str());
  std::fflush(stream_);
}

void ProgressBar::finish(const Metrics& metrics) {
  if (!enabled_ || finished_) return;
  finished_ = true;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::int64_t done = total_ > 0 ? total_ : 0;
  std::fprintf(stream_, terminal_ ? "\r\033[K%s\n" : "%s\n",
               render(done, metrics, elapsed).c_str());
  std::fflush(stream_);
}

}  // namespace tlkit
