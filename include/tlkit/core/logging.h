#pragma once
// The library's logger. tlkit never writes to stdout: it logs through the spdlog logger named
// "tlkit", whose sinks and level belong to the application (the CLI sends it to stderr).

#include <memory>

#include <spdlog/spdlog.h>

namespace tlkit {

// The "tlkit" logger; created on first use with a stderr sink if the application made none.
std::shared_ptr<spdlog::logger> logger();

// Replaces the library logger (e.g. with one that has a file sink as well).
void set_logger(std::shared_ptr<spdlog::logger> logger);

}  // namespace tlkit
