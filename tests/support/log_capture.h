#pragma once
// Captures the library's log lines while alive (for tests of warnings).

#include <memory>
#include <string>
#include <vector>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <tlkit/core/logging.h>

namespace tlkit::test {

class LogCapture {
 public:
  LogCapture()
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256)), old_(tlkit::logger()) {
    tlkit::set_logger(std::make_shared<spdlog::logger>("tlkit_test_capture", sink_));
  }
  ~LogCapture() { tlkit::set_logger(old_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::vector<std::string> lines() const { return sink_->last_formatted(); }
  std::string text() const {
    std::string all;
    for (const auto& line : lines()) all += line;
    return all;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> old_;
};

}  // namespace tlkit::test
