#pragma once
// What every fuzz target shares: the input written to a file (the readers take paths, as users
// give them), and the rule for a finding. A reader may reject any input, but only with a
// tlkit::Error (one clear message); any other exception (a raw LibTorch or standard-library
// error), a crash, a sanitizer report or a hang is a finding.

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

namespace tlkit::fuzz {

// A folder of this process's own under /dev/shm (or the temp folder), made once.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm")
                                     ? std::filesystem::path("/dev/shm")
                                     : std::filesystem::temp_directory_path();
    auto made = base / ("tlkit_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(made);
    tlkit::logger()->set_level(spdlog::level::off);
    return made;
  }();
  return dir;
}

inline void write(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

// Runs `body`; a tlkit::Error is an accepted rejection, anything else aborts (a finding).
template <typename Body>
void expect_only_tlkit_errors(Body&& body) {
  try {
    body();
  } catch (const tlkit::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "finding: an exception that is not a tlkit::Error: %s\n", e.what());
    std::abort();
  }
}

}  // namespace tlkit::fuzz
