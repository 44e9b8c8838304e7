// IDX files (MNIST / Fashion-MNIST): small files written here, gzip by Python, and the real
// Fashion-MNIST from Debian's dataset-fashion-mnist when it is installed.

#include <tlkit/core/error.h>
#include <tlkit/data/dataset.h>
#include <tlkit/data/idx.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/data_test_util.h"

namespace fs = std::filesystem;
using namespace tlkit::data;
using tlkit::test::TempDir;

namespace {

const fs::path kFashionMnist = "/usr/share/datasets/fashion-mnist";

std::string big_endian(uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
          static_cast<char>(value >> 8), static_cast<char>(value)};
}

// An IDX file of unsigned bytes: 0, 0, 0x08, ndim, big-endian sizes, data.
std::string idx_bytes(const torch::Tensor& data) {
  std::string bytes = {0, 0, 8, static_cast<char>(data.dim())};
  for (int64_t d : data.sizes()) bytes += big_endian(static_cast<uint32_t>(d));
  const auto flat = data.contiguous();
  bytes.append(reinterpret_cast<const char*>(flat.data_ptr<uint8_t>()),
               static_cast<size_t>(flat.numel()));
  return bytes;
}

// Compresses each file to FILE.gz with Python's gzip (an independent writer) and removes FILE.
void gzip_files(const std::vector<fs::path>& files) {
  std::vector<std::string> arguments;
  for (const auto& file : files) arguments.push_back(file.string());
  tlkit::test::python(
      "import gzip,os,shutil,sys\n"
      "for p in sys.argv[1:]:\n"
      "  with open(p,\"rb\") as i, gzip.open(p+\".gz\",\"wb\") as o: shutil.copyfileobj(i,o)\n"
      "  os.remove(p)",
      arguments);
}

struct FakeIdx {
  torch::Tensor train_images, train_labels, test_images, test_labels;
};

// train: 12 images of 5 x 4, test: 6; labels cycle through the 10 classes. `gz` compresses them.
FakeIdx write_idx(const fs::path& dir, bool gz) {
  FakeIdx fake;
  torch::manual_seed(23);
  fake.train_images = torch::randint(0, 256, {12, 5, 4}, torch::kUInt8);
  fake.train_labels = torch::arange(12, torch::kLong).remainder(10).to(torch::kUInt8);
  fake.test_images = torch::randint(0, 256, {6, 5, 4}, torch::kUInt8);
  fake.test_labels = torch::arange(6, torch::kLong).remainder(10).to(torch::kUInt8);
  const std::vector<std::pair<std::string, torch::Tensor>> files = {
      {"train-images-idx3-ubyte", fake.train_images},
      {"train-labels-idx1-ubyte", fake.train_labels},
      {"t10k-images-idx3-ubyte", fake.test_images},
      {"t10k-labels-idx1-ubyte", fake.test_labels}};
  std::vector<fs::path> written;
  for (const auto& [name, tensor] : files) {
    tlkit::test::write_bytes(dir / name, idx_bytes(tensor));
    written.push_back(dir / name);
  }
  if (gz) gzip_files(written);
  return fake;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const tlkit::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(DataIdx, PlainAndGzipFilesReadTheSame) {
  TempDir plain_dir, gz_dir;
  const auto fake = write_idx(plain_dir.path(), false);
  write_idx(gz_dir.path(), true);
  ASSERT_TRUE(fs::exists(gz_dir / "train-images-idx3-ubyte.gz"));
  const auto plain = read_idx(plain_dir / "train-images-idx3-ubyte");
  const auto packed = read_idx(gz_dir / "train-images-idx3-ubyte.gz");
  EXPECT_TRUE(torch::equal(plain, fake.train_images));
  EXPECT_TRUE(torch::equal(packed, fake.train_images));
  EXPECT_TRUE(torch::equal(read_idx(gz_dir / "t10k-labels-idx1-ubyte.gz"), fake.test_labels));
}

TEST(DataIdx, OpenSourceNamesClassesPerPrefix) {
  TempDir dir;
  const auto fake = write_idx(dir.path(), true);
  const auto fashion = open_source("fashion-mnist:" + dir.path().string());
  ASSERT_TRUE(fashion.train && fashion.test);
  EXPECT_FALSE(fashion.val);
  EXPECT_EQ(fashion.train->size(), 12u);
  EXPECT_EQ(fashion.test->size(), 6u);
  EXPECT_EQ(fashion.train->classes()[0], "T-shirt/top");
  EXPECT_EQ(fashion.train->classes()[9], "Ankle boot");
  const auto sample = fashion.train->get(7);
  EXPECT_EQ(sample.image.sizes(), (torch::IntArrayRef{5, 4, 1}));
  EXPECT_TRUE(torch::equal(sample.image.squeeze(2), fake.train_images[7]));
  EXPECT_EQ(sample.label, 7);
  const auto digits = open_source("mnist:" + dir.path().string());
  EXPECT_EQ(digits.test->classes()[3], "3");
}

TEST(DataIdx, WrongMagicAndWrongCountsNameTheFile) {
  TempDir dir;
  write_idx(dir.path(), false);
  const auto images = dir.path() / "train-images-idx3-ubyte";
  auto bytes = tlkit::test::file_bytes(images);
  auto bad = bytes;
  bad[0] = 0x1f;
  tlkit::test::write_bytes(images, bad);
  auto message = error_of([&] { read_idx(images); });
  EXPECT_NE(message.find("wrong magic number"), std::string::npos) << message;
  EXPECT_NE(message.find(images.string()), std::string::npos) << message;
  bad = bytes;
  bad.resize(bad.size() - 7);
  tlkit::test::write_bytes(images, bad);
  message = error_of([&] { read_idx(images); });
  EXPECT_NE(message.find("header promises 240"), std::string::npos) << message;
  EXPECT_NE(message.find(images.string()), std::string::npos) << message;
  tlkit::test::write_bytes(images, bytes);
  // Labels of another set: the counts differ.
  fs::copy_file(dir.path() / "t10k-labels-idx1-ubyte", dir.path() / "train-labels-idx1-ubyte",
                fs::copy_options::overwrite_existing);
  message = error_of([&] { open_source("mnist:" + dir.path().string()); });
  EXPECT_NE(message.find("12 images"), std::string::npos) << message;
  EXPECT_NE(message.find("6 labels"), std::string::npos) << message;
}

TEST(DataIdx, TruncatedGzipAndMissingFilesAreClearErrors) {
  TempDir dir;
  write_idx(dir.path(), true);
  const auto file = dir.path() / "t10k-images-idx3-ubyte.gz";
  auto bytes = tlkit::test::file_bytes(file);
  bytes.resize(bytes.size() / 2);
  tlkit::test::write_bytes(file, bytes);
  auto message = error_of([&] { read_idx(file); });
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
  fs::remove(dir.path() / "train-labels-idx1-ubyte.gz");
  message = error_of([&] { open_source("fashion-mnist:" + dir.path().string()); });
  EXPECT_NE(message.find("train-labels-idx1-ubyte"), std::string::npos) << message;
}

TEST(DataIdx, RealFashionMnistHasSixtyAndTenThousandBalancedImages) {
  if (!fs::exists(kFashionMnist / "train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed (" << kFashionMnist << ")";
  }
  const auto splits = open_source("fashion-mnist:" + kFashionMnist.string());
  ASSERT_EQ(splits.train->size(), 60000u);
  ASSERT_EQ(splits.test->size(), 10000u);
  EXPECT_EQ(class_counts(*splits.train), std::vector<size_t>(10, 6000));
  EXPECT_EQ(class_counts(*splits.test), std::vector<size_t>(10, 1000));
  // Cross-check with an independent reader (Python gzip + numpy).
  const auto expected = tlkit::test::python(
      "import gzip,numpy as n; p=\"" + kFashionMnist.string() +
      "/\"; "
      "i=n.frombuffer(gzip.open(p+\"t10k-images-idx3-ubyte.gz\").read(),n.uint8,offset=16).reshape("
      "-1,28,28); "
      "l=n.frombuffer(gzip.open(p+\"t10k-labels-idx1-ubyte.gz\").read(),n.uint8,offset=8); "
      "print(int(i[0].sum()), int(i[9999].sum()), int(l[0]), int(l[9999]))");
  const auto first = splits.test->get(0), last = splits.test->get(9999);
  EXPECT_EQ(first.image.sizes(), (torch::IntArrayRef{28, 28, 1}));
  const auto got = std::to_string(first.image.sum().item<int64_t>()) + " " +
                   std::to_string(last.image.sum().item<int64_t>()) + " " +
                   std::to_string(first.label) + " " + std::to_string(last.label) + "\n";
  EXPECT_EQ(got, expected);
}

// Sizes whose product overflows (a corrupt header) are refused by name.
TEST(DataIdx, AnOverflowingHeaderIsAClearError) {
  TempDir dir;
  std::string bytes = {0, 0, 8, 4};
  for (int d = 0; d < 4; ++d) bytes += big_endian(0xFFFFFFFFu);
  bytes += std::string(16, '\0');
  tlkit::test::write_bytes(dir / "bad-idx3-ubyte", bytes);
  tlkit::test::expect_error([&] { read_idx(dir / "bad-idx3-ubyte"); }, "overflow");
}
