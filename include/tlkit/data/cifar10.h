#pragma once
// CIFAR-10 in its binary distribution (the files in cifar-10-batches-bin, unchanged).
//
// Each batch file holds 10000 records of 1 + 3072 bytes: the label (0..9), then the red, green and
// blue planes of a 32 x 32 image, row-major. train = data_batch_1..5.bin, test = test_batch.bin;
// class names come from batches.meta.txt (one per line). The files are read into memory once
// (150 MB for train) as H x W x C, so get() is a copy.
// Source: Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html ("binary version").

#include <filesystem>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include <tlkit/data/dataset.h>

namespace tlkit::data {

class Cifar10 : public Dataset {
 public:
  enum class Part { kTrain, kTest };
  static constexpr int kSide = 32;
  static constexpr size_t kRecordBytes = 1 + 3 * 32 * 32;

  Cifar10(std::filesystem::path dir, Part part);

  size_t size() const override { return labels_.size(); }
  Sample get(size_t index) const override;
  std::string source(size_t index) const override;
  const std::vector<std::string>& classes() const override { return classes_; }
  std::vector<int64_t> labels() const override { return labels_; }
  std::string describe() const override;

  // The batch files of a part, in order (data_batch_1.bin..data_batch_5.bin, or test_batch.bin).
  static std::vector<std::string> file_names(Part part);

 private:
  at::Tensor read_batch(const std::filesystem::path& file);

  std::filesystem::path dir_;
  Part part_;
  std::vector<std::string> classes_;
  std::vector<std::string> files_;  // file name of each loaded batch
  std::vector<size_t> records_per_file_;
  at::Tensor images_;  // N x 32 x 32 x 3 uint8
  std::vector<int64_t> labels_;
};

// Class names from batches.meta.txt in `dir` (blank lines dropped); CIFAR-10's names if absent.
std::vector<std::string> read_cifar10_classes(const std::filesystem::path& dir);

}  // namespace tlkit::data
