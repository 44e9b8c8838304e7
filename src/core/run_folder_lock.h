#pragma once
// The lock a RunFolder holds (internal to the core layer).

#include <filesystem>
#include <string>

namespace tlkit::detail {

// Takes the lock of `dir` (flock on dir/.tlkit.lock, non-blocking) and writes this process's PID
// and `command` into it; throws tlkit::Error naming the holder when another process has it.
// Returns the lock file's descriptor (closing it releases the lock).
int take_lock(const std::filesystem::path& dir, const std::string& command);

// "2026-12-06T02:19:31Z"
std::string utc_now();

}  // namespace tlkit::detail
