#include <tlkit/core/logging.h>

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace tlkit {
namespace {
std::mutex& logger_mutex() {
  static std::mutex mutex;
  return mutex;
}
std::shared_ptr<spdlog::logger>& logger_slot() {
  static std::shared_ptr<spdlog::logger> slot;
  return slot;
}
}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard<std::mutex> lock(logger_mutex());
  auto& slot = logger_slot();
  if (!slot) {
    slot = spdlog::get("tlkit");
    if (!slot) slot = spdlog::stderr_color_mt("tlkit");
  }
  return slot;
}

void set_logger(std::shared_ptr<spdlog::logger> new_logger) {
  std::lock_guard<std::mutex> lock(logger_mutex());
  logger_slot() = std::move(new_logger);
}

}  // namespace tlkit
