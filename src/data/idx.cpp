#include <tlkit/data/idx.h>

#include <cstring>

#include <ATen/ATen.h>
#include <zlib.h>

#include <tlkit/core/error.h>

namespace fs = std::filesystem;

namespace tlkit::data {
namespace {

// The whole (decompressed) contents of a plain or gzip file; gzread passes plain files through.
std::string read_maybe_gzip(const fs::path& file) {
  TLKIT_CHECK(fs::is_regular_file(file), "IDX file '", file.string(), "' does not exist");
  gzFile in = gzopen(file.c_str(), "rb");
  TLKIT_CHECK(in != nullptr, "cannot open IDX file '", file.string(), "'; check its permissions");
  std::string contents;
  std::vector<char> chunk(1 << 20);
  int n = 0;
  while ((n = gzread(in, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0)
    contents.append(chunk.data(), static_cast<size_t>(n));
  int code = Z_OK;
  const std::string message = n < 0 ? gzerror(in, &code) : "";
  gzclose(in);
  TLKIT_CHECK(n == 0, "cannot decompress IDX file '", file.string(), "': ", message,
              " (truncated or corrupt download); download it again");
  return contents;
}

std::uint32_t big_endian32(const std::string& bytes, size_t offset) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data() + offset);
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
         b[3];
}

}  // namespace

at::Tensor read_idx(const fs::path& file) {
  const std::string bytes = read_maybe_gzip(file);
  TLKIT_CHECK(
      bytes.size() >= 4 && bytes[0] == 0 && bytes[1] == 0, "'", file.string(),
      "' is not an IDX file (wrong magic number: it must start with two zero bytes); give the ",
      "MNIST / Fashion-MNIST files as downloaded (e.g. train-images-idx3-ubyte.gz)");
  const auto type = static_cast<unsigned char>(bytes[2]);
  TLKIT_CHECK(type == 0x08, "IDX file '", file.string(), "' holds data of type 0x", std::hex,
              static_cast<int>(type), std::dec,
              "; only unsigned bytes (0x08, as in MNIST) are supported");
  const size_t dims = static_cast<unsigned char>(bytes[3]);
  TLKIT_CHECK(dims >= 1 && dims <= 4 && bytes.size() >= 4 + 4 * dims, "IDX file '", file.string(),
              "' has a bad header (", dims, " dimensions); the file is corrupt, download it again");
  std::vector<int64_t> shape;
  size_t expected = 1;
  for (size_t d = 0; d < dims; ++d) {
    shape.push_back(big_endian32(bytes, 4 + 4 * d));
    TLKIT_CHECK(!__builtin_mul_overflow(expected, static_cast<size_t>(shape.back()), &expected),
                "IDX file '", file.string(), "' has a header whose sizes overflow (",
                at::IntArrayRef(shape), "); the file is corrupt, download it again");
  }
  const size_t header = 4 + 4 * dims;
  TLKIT_CHECK(bytes.size() - header == expected, "IDX file '", file.string(), "' holds ",
              bytes.size() - header, " data bytes but its header promises ", expected, " (",
              shape.front(), " items); the file is truncated or corrupt, download it again");
  auto tensor = at::empty(shape, at::kByte);
  // (An empty tensor has no storage: memcpy from/to null is undefined even for 0 bytes; found by
  // tests/fuzz/fuzz_idx.)
  if (expected > 0) std::memcpy(tensor.data_ptr<uint8_t>(), bytes.data() + header, expected);
  return tensor;
}

fs::path find_idx_file(const fs::path& dir, const std::string& stem) {
  // "train-images-idx3-ubyte" is also distributed as "train-images.idx3-ubyte".
  std::string dotted = stem;
  const auto dash = dotted.rfind("-idx");
  if (dash != std::string::npos) dotted[dash] = '.';
  for (const auto& name : {stem, stem + ".gz", dotted, dotted + ".gz"}) {
    if (fs::is_regular_file(dir / name)) return dir / name;
  }
  fail("IDX folder '", dir.string(), "' has no ", stem, " or ", stem, ".gz",
       fs::is_directory(dir) ? "" : " (the folder does not exist)",
       "; give the folder holding the MNIST / Fashion-MNIST files ",
       "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
       "t10k-labels-idx1-ubyte.gz)");
}

IdxDataset::IdxDataset(const fs::path& images_file, const fs::path& labels_file,
                       std::vector<std::string> classes, std::string name)
    : source_(images_file.string()), name_(std::move(name)), classes_(std::move(classes)) {
  auto images = read_idx(images_file);
  const auto labels = read_idx(labels_file);
  TLKIT_CHECK(images.dim() == 3, "IDX images file '", images_file.string(), "' has ", images.dim(),
              " dimensions; images need 3 (count x rows x columns) - is it a labels file?");
  TLKIT_CHECK(labels.dim() == 1, "IDX labels file '", labels_file.string(), "' has ", labels.dim(),
              " dimensions; labels need 1 - is it an images file?");
  TLKIT_CHECK(
      labels.size(0) == images.size(0), "'", images_file.string(), "' holds ", images.size(0),
      " images but '", labels_file.string(), "' holds ", labels.size(0),
      " labels; use the labels file of the same set (train-* with train-*, t10k-* with t10k-*)");
  images_ = images.unsqueeze(3);
  const auto* data = labels.data_ptr<uint8_t>();
  labels_.assign(data, data + labels.numel());
  for (size_t i = 0; i < labels_.size(); ++i) {
    TLKIT_CHECK(labels_[i] < static_cast<int64_t>(classes_.size()), "IDX labels file '",
                labels_file.string(), "': label ", labels_[i], " at item ", i, " is not below ",
                classes_.size(), " classes; the file is corrupt or belongs to another dataset");
  }
}

Sample IdxDataset::get(size_t index) const {
  TLKIT_CHECK(index < labels_.size(), "sample index ", index, " is out of range for ", describe());
  return Sample{images_[static_cast<int64_t>(index)].clone(), labels_[index], source(index)};
}

std::string IdxDataset::source(size_t index) const {
  TLKIT_CHECK(index < labels_.size(), "sample index ", index, " is out of range for ", describe());
  return source_ + "#" + std::to_string(index);
}

std::string IdxDataset::describe() const {
  return name_ + " '" + source_ + "' (" + std::to_string(labels_.size()) + " images, " +
         std::to_string(classes_.size()) + " classes)";
}

std::vector<std::string> mnist_classes() {
  return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
}

std::vector<std::string> fashion_mnist_classes() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

}  // namespace tlkit::data
