#include <tlkit/core/atomic_file.h>

#include <atomic>
#include <cstring>
#include <sstream>
#include <system_error>

#include <unistd.h>

#include <tlkit/core/error.h>

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

void AtomicFile::commit() {
  TLKIT_CHECK(!committed_, "AtomicFile for '", target_.string(), "' committed twice");
  out_.flush();
  TLKIT_CHECK(out_.good(), "writing '", target_.string(), "' failed (disk full?)");
  out_.close();
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

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK(in.is_open(), "cannot read '", path.string(), "': ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace tlkit
