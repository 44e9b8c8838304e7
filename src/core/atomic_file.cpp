#include <tlkit/core/atomic_file.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <system_error>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <tlkit/core/error.h>
#include <tlkit/core/run_folder.h>

namespace fs = std::filesystem;

namespace tlkit {
namespace {
fs::path temporary_name_for(const fs::path& target) {
  static std::atomic<unsigned> counter{0};
  std::ostringstream name;
  name << "." << target.filename().string() << ".tmp." << ::getpid() << "." << counter++;
  return target.parent_path() / name.str();
}
}  // namespace

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  note_written(target_);  // a run folder records it (and refuses a file it did not write)
  if (target_.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(target_.parent_path(), ec);
    TLKIT_CHECK(!ec, "cannot create folder '", target_.parent_path().string(), "': ", ec.message());
  }
  temp_ = temporary_name_for(target_);
  out_.open(temp_, std::ios::binary | std::ios::trunc);
  TLKIT_CHECK(out_.is_open(), "cannot write '", temp_.string(), "': ", std::strerror(errno),
              "; check that the folder exists and is writable");
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  out_.close();
  std::error_code ignored;
  fs::remove(temp_, ignored);
}

size_t AtomicFile::write(const void* data, size_t size) {
  if (write_errno_ == 0) {
    errno = 0;
    out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out_) write_errno_ = errno != 0 ? errno : EIO;
  }
  return size;
}

void AtomicFile::commit() {
  TLKIT_CHECK(!committed_, "AtomicFile for '", target_.string(), "' committed twice");
  int error = write_errno_;
  if (error == 0) {
    errno = 0;
    out_.flush();
    if (!out_.good()) error = errno != 0 ? errno : EIO;
  }
  out_.close();
  if (error == 0 && out_.fail()) error = errno != 0 ? errno : EIO;
  if (error == 0) {
    // The data is on disk before the name is: a crash of the machine cannot leave a target that
    // names unwritten blocks (and a delayed allocation failure shows up here, not later).
    const int fd = ::open(temp_.c_str(), O_RDONLY);
    if (fd < 0 || ::fsync(fd) != 0) error = errno;
    if (fd >= 0) ::close(fd);
  }
  if (error != 0) {
    std::error_code ignored;
    fs::remove(temp_, ignored);
    fail("writing '", target_.string(), "' failed: ", std::strerror(error),
         error == ENOSPC || error == EFBIG || error == EDQUOT
             ? "; the disk (or quota) is full: free space and rerun (the previous file is kept)"
             : "; the previous file is kept");
  }
  std::error_code ec;
  fs::rename(temp_, target_, ec);
  TLKIT_CHECK(!ec, "cannot move '", temp_.string(), "' to '", target_.string(),
              "': ", ec.message());
  committed_ = true;
}

void write_file_atomic(const fs::path& path, const std::string& contents) {
  AtomicFile file(path);
  file.stream().write(contents.data(), static_cast<std::streamsize>(contents.size()));
  file.commit();
}

bool is_stale_temporary(const std::string& name, std::string& target) {
  // .<target>.tmp.<pid>.<n>
  const auto at = name.rfind(".tmp.");
  if (name.size() < 2 || name[0] != '.' || at == std::string::npos || at < 2) return false;
  const auto rest = name.substr(at + 5);
  const auto dot = rest.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size()) return false;
  char* end = nullptr;
  const long pid = std::strtol(rest.c_str(), &end, 10);
  if (end != rest.c_str() + dot || pid <= 0) return false;
  if (rest.find_first_not_of("0123456789", dot + 1) != std::string::npos) return false;
  if (pid == ::getpid()) return false;  // this process's own writes in flight
  if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) return false;  // still running
  target = name.substr(1, at - 1);
  return true;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK(in.is_open(), "cannot read '", path.string(), "': ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace tlkit
