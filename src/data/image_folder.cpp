#include <tlkit/data/image_folder.h>

#include <algorithm>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

#include "folder_walk.h"
#include "scan_cache.h"

namespace fs = std::filesystem;

namespace tlkit::data {
namespace {

// The canonical path of `path` (as far as it exists), else its absolute path.
fs::path real_path(const fs::path& path) {
  std::error_code error;
  auto canonical = fs::weakly_canonical(path, error);
  return error ? fs::absolute(path) : canonical;
}

}  // namespace

ImageFolder::ImageFolder(fs::path root, bool strict, std::vector<std::string> classes)
    : root_(std::move(root)), classes_(std::move(classes)) {
  std::error_code error;
  const bool exists = fs::exists(root_, error);
  TLKIT_CHECK(!error, "cannot read image folder '", root_.string(), "': ", error.message());
  TLKIT_CHECK(exists, "image folder '", root_.string(),
              "' does not exist; check the path (a source is DIR, cifar10:DIR, fashion-mnist:DIR "
              "or mnist:DIR)");
  TLKIT_CHECK(fs::is_directory(root_, error), "'", root_.string(),
              "' is not a folder; an image source is a folder with one sub-folder per class");
  std::vector<std::string> folders;
  size_t loose_images = 0;
  fs::directory_iterator list(root_, error);
  TLKIT_CHECK(!error, "cannot read image folder '", root_.string(), "': ", error.message(),
              "; give the user running tlkit read access to it");
  for (; !error && list != fs::directory_iterator(); list.increment(error)) {
    const auto& entry = *list;
    std::error_code entry_error;
    const bool is_folder = entry.is_directory(entry_error);
    if (is_hidden(entry.path())) {
      if (is_folder)
        logger()->warn(
            "ignoring the hidden folder '{}': not a class (torchvision's ImageFolder would count "
            "it as one, shifting the label index of every class after it)",
            entry.path().string());
      continue;
    }
    if (is_folder)
      folders.push_back(entry.path().filename().string());
    else if (is_image_file_name(entry.path()))
      ++loose_images;
  }
  TLKIT_CHECK(!error, "cannot list image folder '", root_.string(), "': ", error.message());
  std::sort(folders.begin(), folders.end());
  TLKIT_CHECK(
      !folders.empty(), "image folder '", root_.string(), "' has no class sub-folders",
      loose_images ? " (its " + std::to_string(loose_images) + " images lie directly inside)" : "",
      "; put each class's images in a sub-folder named after the class, e.g. '", root_.string(),
      "/cat/1.jpg'");
  const bool fixed_classes = !classes_.empty();
  if (!fixed_classes) classes_ = folders;
  for (const auto& name : folders) {
    const auto it = std::find(classes_.begin(), classes_.end(), name);
    TLKIT_CHECK(it != classes_.end(), "class folder '", (root_ / name).string(),
                "' is not one of the training classes; every class in val/ and test/ must also be "
                "in train/");
  }
  ScanCache cache(real_path(root_));
  for (const auto& name : folders) {
    const auto it = std::find(classes_.begin(), classes_.end(), name);
    scan_class(root_ / name, static_cast<int64_t>(it - classes_.begin()), strict, cache);
  }
  cache.save();
  checked_ = cache.checked();
  reused_ = cache.reused();
  logger()->debug("image folder '{}': {} file(s) checked, {} unchanged since the last scan",
                  root_.string(), checked_, reused_);
  if (skipped_ > 0) {
    logger()->warn("image folder '{}': skipped {} corrupt or non-image file(s)", root_.string(),
                   skipped_);
  }
  if (hidden_ > 0)
    logger()->info(
        "image folder '{}': left out {} hidden file(s)/folder(s) (names starting "
        "with '.')",
        root_.string(), hidden_);
}

void ImageFolder::scan_class(const fs::path& folder, int64_t label, bool strict, ScanCache& cache) {
  const auto prefix = root_.native().size();
  std::vector<fs::path> found;
  auto walk = walk_class_folder(folder, real_path(root_));
  hidden_ += walk.hidden;
  for (const auto& path : walk.files) {
    if (!is_image_file_name(path)) continue;
    // The key: the path below the root, without the separator after it.
    auto relative = path.native().substr(prefix);
    relative.erase(0, relative.find_first_not_of('/'));
    const auto problem = cache.verdict(path, relative);
    if (problem.empty()) {
      found.push_back(path);
      continue;
    }
    TLKIT_CHECK(!strict, "corrupt image '", path.string(), "': ", problem,
                "; remove or replace the file, or run without strict mode to skip such files");
    logger()->warn("skipping '{}': {}", path.string(), problem);
    ++skipped_;
  }
  TLKIT_CHECK(!found.empty(), "class folder '", folder.string(), "' holds no readable images (",
              image_extensions(), "); add images to it or remove the folder");
  // torchvision's order: folder by folder (sorted paths), then the names within each.
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) {
    const auto pa = a.parent_path().native(), pb = b.parent_path().native();
    return pa != pb ? pa < pb : a.filename().native() < b.filename().native();
  });
  for (auto& path : found) {
    files_.push_back(std::move(path));
    labels_.push_back(label);
  }
}

Sample ImageFolder::get(size_t index) const {
  TLKIT_CHECK(index < files_.size(), "sample index ", index, " is out of range for ", describe());
  const auto& path = files_[index];
  return Sample{read_image(path), labels_[index], path.string()};
}

std::string ImageFolder::source(size_t index) const {
  TLKIT_CHECK(index < files_.size(), "sample index ", index, " is out of range for ", describe());
  return files_[index].string();
}

std::string ImageFolder::describe() const {
  std::string text = "image folder '" + root_.string() + "' (" + std::to_string(files_.size()) +
                     " images, " + std::to_string(classes_.size()) + " classes";
  if (skipped_ > 0) text += ", " + std::to_string(skipped_) + " corrupt files skipped";
  return text + ")";
}

}  // namespace tlkit::data
