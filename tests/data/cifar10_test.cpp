// CIFAR-10 binary batches, written by the test in the distributed format.

#include <tlkit/core/error.h>
#include <tlkit/data/cifar10.h>
#include <tlkit/data/dataset.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/data_test_util.h"

namespace fs = std::filesystem;
using namespace tlkit::data;
using tlkit::test::TempDir;

namespace {

// Writes `images` (N x 32 x 32 x 3 uint8) as a CIFAR-10 batch: per record the label byte, then
// the R, G and B planes, each 32 x 32 row-major.
void write_batch(const fs::path& file, const torch::Tensor& images,
                 const std::vector<uint8_t>& labels) {
  std::string bytes;
  for (int64_t n = 0; n < images.size(0); ++n) {
    bytes.push_back(static_cast<char>(labels[static_cast<size_t>(n)]));
    const auto planes = images[n].permute({2, 0, 1}).contiguous();
    bytes.append(reinterpret_cast<const char*>(planes.data_ptr<uint8_t>()), 3 * 32 * 32);
  }
  tlkit::test::write_bytes(file, bytes);
}

struct FakeCifar {
  std::vector<torch::Tensor> images;  // per batch file, train 1..5 then test
  std::vector<std::vector<uint8_t>> labels;
};

// Five train batches of 4 records and a test batch of 3, with batches.meta.txt.
FakeCifar write_cifar(const fs::path& dir) {
  FakeCifar fake;
  torch::manual_seed(17);
  std::vector<std::string> names = Cifar10::file_names(Cifar10::Part::kTrain);
  names.push_back("test_batch.bin");
  for (size_t b = 0; b < names.size(); ++b) {
    const int64_t n = b < 5 ? 4 : 3;
    fake.images.push_back(torch::randint(0, 256, {n, 32, 32, 3}, torch::kUInt8));
    std::vector<uint8_t> labels;
    for (int64_t i = 0; i < n; ++i)
      labels.push_back(static_cast<uint8_t>((b * 4 + static_cast<size_t>(i)) % 10));
    fake.labels.push_back(labels);
    write_batch(dir / names[b], fake.images.back(), labels);
  }
  tlkit::test::write_bytes(
      dir / "batches.meta.txt",
      "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
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

TEST(DataCifar10, ReadsRecordsAsRgbImagesWithLabelsAndClassNames) {
  TempDir dir;
  const auto fake = write_cifar(dir.path());
  Cifar10 train(dir.path(), Cifar10::Part::kTrain);
  ASSERT_EQ(train.size(), 20u);
  EXPECT_EQ(train.classes().size(), 10u);
  EXPECT_EQ(train.classes()[9], "truck");
  const auto sample = train.get(9);  // batch 3, record 1
  EXPECT_EQ(sample.image.sizes(), (torch::IntArrayRef{32, 32, 3}));
  EXPECT_TRUE(torch::equal(sample.image, fake.images[2][1]));
  EXPECT_EQ(sample.label, fake.labels[2][1]);
  EXPECT_EQ(sample.source, (dir.path() / "data_batch_3.bin").string() + "#1");
  const auto labels = train.labels();
  EXPECT_EQ(labels[19], fake.labels[4][3]);
  Cifar10 test(dir.path(), Cifar10::Part::kTest);
  ASSERT_EQ(test.size(), 3u);
  EXPECT_TRUE(torch::equal(test.get(2).image, fake.images[5][2]));
}

TEST(DataCifar10, OpenSourceGivesTrainTestAndAStratifiedVal) {
  TempDir dir;
  write_cifar(dir.path());
  SourceOptions options;
  options.val_split = 0.5;
  options.seed = 3;
  const auto splits = open_source("cifar10:" + dir.path().string(), options);
  ASSERT_TRUE(splits.train && splits.val && splits.test);
  EXPECT_EQ(splits.train->size() + splits.val->size(), 20u);
  EXPECT_EQ(splits.val->size(), 10u);  // 2 per class, half of each to val
  EXPECT_EQ(class_counts(*splits.val), std::vector<size_t>(10, 1));
  EXPECT_EQ(splits.test->size(), 3u);
  EXPECT_NE(splits.train->describe().find("CIFAR-10 train"), std::string::npos)
      << splits.train->describe();
}

TEST(DataCifar10, TruncatedBatchNamesTheFile) {
  TempDir dir;
  write_cifar(dir.path());
  const auto file = dir.path() / "data_batch_4.bin";
  auto bytes = tlkit::test::file_bytes(file);
  bytes.resize(bytes.size() - 100);
  tlkit::test::write_bytes(file, bytes);
  const auto message = error_of([&] { Cifar10(dir.path(), Cifar10::Part::kTrain); });
  EXPECT_NE(message.find("data_batch_4.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST(DataCifar10, MissingFilesAndBadLabelsAreClearErrors) {
  TempDir dir;
  write_cifar(dir.path());
  fs::remove(dir.path() / "data_batch_2.bin");
  auto message = error_of([&] { Cifar10(dir.path(), Cifar10::Part::kTrain); });
  EXPECT_NE(message.find("lacks data_batch_2.bin"), std::string::npos) << message;
  write_batch(dir.path() / "data_batch_2.bin", torch::zeros({1, 32, 32, 3}, torch::kUInt8), {12});
  message = error_of([&] { Cifar10(dir.path(), Cifar10::Part::kTrain); });
  EXPECT_NE(message.find("label 12"), std::string::npos) << message;
  message = error_of([&] { Cifar10(dir.path() / "nope", Cifar10::Part::kTest); });
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
}
