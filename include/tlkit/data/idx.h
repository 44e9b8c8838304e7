#pragma once
// IDX files: MNIST and Fashion-MNIST, plain or gzip-compressed.
//
// An IDX file is a big-endian header - two zero bytes, a type byte (0x08 = unsigned byte), the
// number of dimensions - then one 32-bit size per dimension and the data. Images are N x H x W,
// labels are N. Files are found as train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally ending in .gz (zlib reads both).
// Source: LeCun et al., http://yann.lecun.com/exdb/mnist/ ("file formats"); Xiao et al. 2017
// (Fashion-MNIST, same format, class names in its README).

#include <filesystem>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include <tlkit/data/dataset.h>

namespace tlkit::data {

// Reads a whole IDX file of unsigned bytes (plain or .gz) as a uint8 tensor of its dimensions.
// Throws tlkit::Error naming the file for a wrong magic number, a wrong type, or a size that does
// not match the header.
at::Tensor read_idx(const std::filesystem::path& file);

class IdxDataset : public Dataset {
 public:
  // `name` is for describe(), e.g. "fashion-mnist train".
  IdxDataset(const std::filesystem::path& images_file, const std::filesystem::path& labels_file,
             std::vector<std::string> classes, std::string name);

  size_t size() const override { return labels_.size(); }
  Sample get(size_t index) const override;
  std::string source(size_t index) const override;
  const std::vector<std::string>& classes() const override { return classes_; }
  std::vector<int64_t> labels() const override { return labels_; }
  std::string describe() const override;

 private:
  std::string source_;  // images file name, for Sample::source
  std::string name_;
  std::vector<std::string> classes_;
  at::Tensor images_;  // N x H x W x 1 uint8
  std::vector<int64_t> labels_;
};

// The IDX file for `stem` (e.g. "train-images-idx3-ubyte") in `dir`: the plain file, the .gz, or
// the variant with a dot ("train-images.idx3-ubyte"). Throws tlkit::Error listing what was looked
// for.
std::filesystem::path find_idx_file(const std::filesystem::path& dir, const std::string& stem);

std::vector<std::string> mnist_classes();          // "0".."9"
std::vector<std::string> fashion_mnist_classes();  // "T-shirt/top", "Trouser", ...

}  // namespace tlkit::data
