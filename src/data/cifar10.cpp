#include <tlkit/core/strings.h>
#include <tlkit/data/cifar10.h>

#include <fstream>

#include <ATen/ATen.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

namespace fs = std::filesystem;

namespace tlkit::data {
namespace {

const std::vector<std::string>& default_cifar10_classes() {
  static const std::vector<std::string> names = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

}  // namespace

std::vector<std::string> read_cifar10_classes(const fs::path& dir) {
  const auto meta = dir / "batches.meta.txt";
  if (!fs::exists(meta)) {
    logger()->warn("'{}' not found; using CIFAR-10's class names", meta.string());
    return default_cifar10_classes();
  }
  std::ifstream in(meta);
  TLKIT_CHECK(in, "cannot read '", meta.string(), "'; check its permissions");
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    line = trim(line);
    if (!line.empty()) names.push_back(line);
  }
  TLKIT_CHECK(
      !names.empty(), "'", meta.string(),
      "' lists no class names; it should hold one name per line (airplane, automobile, ...)");
  return names;
}

std::vector<std::string> Cifar10::file_names(Part part) {
  if (part == Part::kTest) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
          "data_batch_5.bin"};
}

Cifar10::Cifar10(fs::path dir, Part part) : dir_(std::move(dir)), part_(part) {
  TLKIT_CHECK(fs::is_directory(dir_), "CIFAR-10 folder '", dir_.string(),
              "' does not exist; give the folder holding data_batch_1.bin ... test_batch.bin ",
              "(cifar-10-batches-bin from the 'CIFAR-10 binary version' download)");
  classes_ = read_cifar10_classes(dir_);
  std::vector<std::string> missing;
  for (const auto& name : file_names(part_)) {
    if (!fs::exists(dir_ / name)) missing.push_back(name);
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& name : missing) list += (list.empty() ? "" : ", ") + name;
    fail("CIFAR-10 folder '", dir_.string(), "' lacks ", list,
         "; it needs the unpacked files of the binary version (cifar-10-binary.tar.gz)");
  }
  std::vector<at::Tensor> parts;
  for (const auto& name : file_names(part_)) {
    parts.push_back(read_batch(dir_ / name));
    files_.push_back(name);
  }
  images_ = parts.size() == 1 ? parts.front() : at::cat(parts);
}

at::Tensor Cifar10::read_batch(const fs::path& file) {
  const std::string bytes = read_file(file);
  TLKIT_CHECK(
      !bytes.empty() && bytes.size() % kRecordBytes == 0, "CIFAR-10 batch '", file.string(),
      "' has ", bytes.size(), " bytes, not a whole number of ", kRecordBytes,
      "-byte records (truncated or not a CIFAR-10 binary batch); download and unpack it again");
  const auto records = static_cast<int64_t>(bytes.size() / kRecordBytes);
  auto raw = at::from_blob(const_cast<char*>(bytes.data()),
                           {records, static_cast<int64_t>(kRecordBytes)}, at::kByte);
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  for (int64_t r = 0; r < records; ++r) {
    const int64_t label = data[static_cast<size_t>(r) * kRecordBytes];
    TLKIT_CHECK(label < static_cast<int64_t>(classes_.size()), "CIFAR-10 batch '", file.string(),
                "': record ", r, " has label ", label, " but there are only ", classes_.size(),
                " classes; the file is corrupt or not CIFAR-10 (CIFAR-100 has a different layout)");
    labels_.push_back(label);
  }
  // R, G, B planes of 32 x 32 -> 32 x 32 x RGB.
  records_per_file_.push_back(static_cast<size_t>(records));
  return raw.slice(1, 1).reshape({records, 3, kSide, kSide}).permute({0, 2, 3, 1}).contiguous();
}

Sample Cifar10::get(size_t index) const {
  TLKIT_CHECK(index < labels_.size(), "sample index ", index, " is out of range for ", describe());
  return Sample{images_[static_cast<int64_t>(index)].clone(), labels_[index], source(index)};
}

std::string Cifar10::source(size_t index) const {
  TLKIT_CHECK(index < labels_.size(), "sample index ", index, " is out of range for ", describe());
  size_t file = 0, offset = index;
  while (offset >= records_per_file_[file]) offset -= records_per_file_[file++];
  return (dir_ / files_[file]).string() + "#" + std::to_string(offset);
}

std::string Cifar10::describe() const {
  return std::string("CIFAR-10 ") + (part_ == Part::kTrain ? "train" : "test") + " '" +
         dir_.string() + "' (" + std::to_string(labels_.size()) + " images, " +
         std::to_string(classes_.size()) + " classes)";
}

}  // namespace tlkit::data
