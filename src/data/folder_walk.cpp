#include "folder_walk.h"

#include <string>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

namespace fs = std::filesystem;

namespace tlkit::data {
namespace {

class Walker {
 public:
  explicit Walker(fs::path root) : root_(std::move(root)) {}

  // Lists `dir` (whose canonical path is `real`) and the folders below it into `found_`.
  void folder(const fs::path& dir, const fs::path& real) {
    std::error_code error;
    fs::directory_iterator it(dir, error);
    if (error) {
      logger()->warn("skipping folder '{}': {}", dir.string(), error.message());
      return;
    }
    inside_.push_back(real);
    for (; !error && it != fs::directory_iterator(); it.increment(error)) {
      if (is_hidden(it->path())) {
        ++found_.hidden;
        continue;
      }
      entry(*it);
    }
    if (error)
      logger()->warn("stopped listing folder '{}' early: {}", dir.string(), error.message());
    inside_.pop_back();
  }

  FolderWalk take() { return std::move(found_); }

 private:
  void entry(const fs::directory_entry& entry) {
    std::error_code error;
    const auto status = entry.status(error);  // of the link's target for a symlink
    const auto& path = entry.path();
    if (entry.is_symlink(error)) {
      const auto target = fs::canonical(path, error);
      if (error == std::errc::too_many_symbolic_link_levels) {
        logger()->warn("skipping symlink '{}': a symlink loop (following it leads back to it)",
                       path.string());
        return;
      }
      if (error) return;  // a dangling link: no file
      if (fs::is_directory(status)) {
        if (may_enter(path, target)) folder(path, target);
        return;
      }
    } else if (fs::is_directory(status)) {
      folder(path, inside_.back() / path.filename());
      return;
    }
    if (fs::is_regular_file(status)) found_.files.push_back(path);
  }

  bool may_enter(const fs::path& link, const fs::path& target) const {
    if (path_contains(target, root_)) {
      logger()->warn(
          "skipping symlink '{}': it points to '{}', which contains the data folder '{}' "
          "(following it would scan the data again{})",
          link.string(), target.string(), root_.string(),
          target == root_ ? "" : " and leave the data folder");
      return false;
    }
    for (const auto& folder : inside_) {
      if (!path_contains(target, folder)) continue;
      logger()->warn(
          "skipping symlink '{}': it points to '{}', a folder it lies inside (a symlink loop)",
          link.string(), target.string());
      return false;
    }
    return true;
  }

  fs::path root_;
  std::vector<fs::path> inside_;  // canonical paths of the folders being listed, outermost first
  FolderWalk found_;
};

}  // namespace

bool path_contains(const fs::path& outer, const fs::path& inner) {
  auto o = outer.begin();
  auto i = inner.begin();
  for (; o != outer.end() && i != inner.end() && *o == *i; ++o, ++i) {
  }
  return o == outer.end() || (std::next(o) == outer.end() && o->empty());  // trailing separator
}

FolderWalk walk_class_folder(const fs::path& folder, const fs::path& root) {
  std::error_code error;
  const auto real = fs::canonical(folder, error);
  TLKIT_CHECK(!error, "cannot read class folder '", folder.string(), "': ", error.message());
  TLKIT_CHECK(!fs::is_symlink(folder, error) || !path_contains(real, root), "class folder '",
              folder.string(), "' is a symlink to '", real.string(),
              "', which contains the data folder (scanning it would leave the data folder or "
              "scan it again); point the link at the class's own images");
  fs::directory_iterator probe(folder, error);
  TLKIT_CHECK(!error, "cannot read class folder '", folder.string(), "': ", error.message(),
              "; give the user running tlkit read access to it (chmod -R u+rX) or remove it");
  Walker walker(root);
  walker.folder(folder, real);
  return walker.take();
}

bool is_hidden(const fs::path& path) {
  const auto name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

}  // namespace tlkit::data
