#pragma once
// Image files without labels, for prediction: the files given, each folder standing for the images
// below it (ImageFolder's walk and extensions: recursively, symlinks followed without leaving the
// folder, hidden names left out), in path order within each folder.
//
// A file that cannot be read or decoded does not stop a batch: get() gives a small black
// placeholder image and error(index) the reason, so the caller reports that file as failed and
// keeps the predictions for the others.

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <tlkit/data/dataset.h>

namespace tlkit::data {

// The images `given` names, in order: a file as it is (whatever its extension: it was asked
// for), a folder as its images. A folder without images is a tlkit::Error.
std::vector<std::filesystem::path> find_images(const std::vector<std::string>& given);

class ImageList : public Dataset {
 public:
  explicit ImageList(std::vector<std::filesystem::path> files);

  size_t size() const override { return files_.size(); }
  // The decoded image (label -1), or the placeholder for a file that cannot be read.
  Sample get(size_t index) const override;
  std::string source(size_t index) const override;
  const std::vector<std::string>& classes() const override { return classes_; }
  std::vector<int64_t> labels() const override;
  std::string describe() const override;

  const std::filesystem::path& file(size_t index) const { return files_.at(index); }
  // Why image `index` could not be read ("" when it was read, or not yet asked for).
  std::string error(size_t index) const;

 private:
  std::vector<std::filesystem::path> files_;
  std::vector<std::string> classes_;  // none: prediction data has no labels
  mutable std::mutex mutex_;
  mutable std::map<size_t, std::string> errors_;
};

}  // namespace tlkit::data
