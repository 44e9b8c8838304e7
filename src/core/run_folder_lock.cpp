// The advisory lock of a run folder (see run_folder.h): flock on RUN/.tlkit.lock, which also
// names the process that holds it.
#include "run_folder_lock.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/run_folder.h>

namespace fs = std::filesystem;

namespace tlkit::detail {
namespace {

bool process_running(long pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

std::string read_lock_holder(int fd) {
  char text[256] = {};
  const auto n = ::pread(fd, text, sizeof(text) - 1, 0);
  std::string holder = n > 0 ? std::string(text, static_cast<size_t>(n)) : std::string();
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
  return holder;
}

// Takes the folder's lock; throws naming the process that holds it.
}  // namespace

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

int take_lock(const fs::path& dir, const std::string& command) {
  const auto path = dir / RunFolder::kLock;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  TLKIT_CHECK(fd >= 0, "cannot create the lock file '", path.string(), "': ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error == EWOULDBLOCK) {
      const auto holder = read_lock_holder(fd);
      ::close(fd);
      fail("the folder '", dir.string(), "' is in use by another tlkit process (",
           holder.empty() ? std::string("its PID is not recorded yet") : "pid " + holder,
           "): two commands cannot write one folder; wait for it to end (or stop it), or use "
           "another folder");
    }
    logger()->warn("cannot lock '{}' ({}): nothing keeps a second tlkit process out of it",
                   path.string(), std::strerror(error));
    return fd;
  }
  const auto earlier = read_lock_holder(fd);
  if (!earlier.empty()) {
    const long pid = std::strtol(earlier.c_str(), nullptr, 10);
    if (!process_running(pid) || pid == ::getpid())
      logger()->info("{}: taking over the lock of pid {}, which is no longer running", dir.string(),
                     earlier);
  }
  const auto holder =
      std::to_string(::getpid()) + " (tlkit " + command + ", since " + utc_now() + ")\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, holder.data(), holder.size(), 0) < 0)
    logger()->warn("cannot record this process in '{}': {}", path.string(), std::strerror(errno));
  return fd;
}

}  // namespace tlkit::detail
