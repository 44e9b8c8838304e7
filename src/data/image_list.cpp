#include <tlkit/data/image_list.h>

#include <algorithm>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>
#include <tlkit/data/image_io.h>

#include "folder_walk.h"

namespace fs = std::filesystem;

namespace tlkit::data {

std::vector<fs::path> find_images(const std::vector<std::string>& given) {
  std::vector<fs::path> files;
  for (const auto& name : given) {
    std::error_code error;
    if (!fs::is_directory(name, error)) {
      files.emplace_back(name);
      continue;
    }
    const auto root = fs::canonical(name, error);
    TLKIT_CHECK(!error, "cannot read folder '", name, "': ", error.message());
    auto walk = walk_class_folder(name, root);
    std::vector<fs::path> found;
    for (auto& file : walk.files)
      if (is_image_file_name(file)) found.push_back(std::move(file));
    TLKIT_CHECK(!found.empty(), "folder '", name, "' holds no images (", image_extensions(), ")");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

ImageList::ImageList(std::vector<fs::path> files) : files_(std::move(files)) {}

Sample ImageList::get(size_t index) const {
  TLKIT_CHECK(index < files_.size(), "sample index ", index, " is out of range for ", describe());
  const auto& path = files_[index];
  try {
    return Sample{read_image(path), -1, path.string()};
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    errors_[index] = e.what();
  }
  return Sample{at::zeros({8, 8, 3}, at::TensorOptions().dtype(at::kByte)), -1, path.string()};
}

std::string ImageList::source(size_t index) const { return files_.at(index).string(); }

std::vector<int64_t> ImageList::labels() const { return std::vector<int64_t>(files_.size(), -1); }

std::string ImageList::describe() const {
  return std::to_string(files_.size()) + " image files";
}

std::string ImageList::error(size_t index) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = errors_.find(index);
  return found == errors_.end() ? std::string() : found->second;
}

}  // namespace tlkit::data
