#include <tlkit/core/npy.h>

#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>

#include "support/test_support.h"

namespace fs = std::filesystem;
using tlkit::test::TempDir;

namespace {

// Runs a Python snippet with numpy; `{dir}` in the code is replaced by the folder.
tlkit::test::CommandResult run_numpy(const std::string& code, const fs::path& dir) {
  std::string script = code;
  for (auto at = script.find("{dir}"); at != std::string::npos; at = script.find("{dir}")) {
    script.replace(at, 5, dir.string());
  }
  const fs::path file = dir / "check.py";
  std::ofstream(file) << "import numpy as np, sys\n" << script;
  return tlkit::test::run_command(tlkit::test::torch_python() + " '" + file.string() + "'");
}

}  // namespace

TEST(Npy, StreamedRowsAreReadByNumpy) {
  TempDir dir;
  const auto values = torch::arange(0, 7 * 5, torch::kFloat).reshape({7, 5}) * 0.25f - 3.0f;
  tlkit::NpyWriter writer(dir / "features.npy", torch::kFloat, {5});
  writer.append(values.slice(0, 0, 3));
  writer.append(values.slice(0, 3, 7));
  EXPECT_FALSE(fs::exists(dir / "features.npy")) << "visible before commit";
  writer.commit();
  tlkit::write_npy(dir / "labels.npy",
                   torch::arange(7, torch::kLong) * static_cast<int64_t>(1000000007));
  const auto result = run_numpy(
      "a = np.load('{dir}/features.npy')\n"
      "assert a.dtype == np.float32 and a.shape == (7, 5), (a.dtype, a.shape)\n"
      "assert np.array_equal(a, np.arange(35, dtype=np.float32).reshape(7, 5) * 0.25 - 3), a\n"
      "b = np.load('{dir}/labels.npy')\n"
      "assert b.dtype == np.int64 and b.shape == (7,), (b.dtype, b.shape)\n"
      "assert np.array_equal(b, np.arange(7) * 1000000007)\n"
      "print('ok')\n",
      dir.path());
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST(Npy, HeaderIsAlignedAndPatchedInPlace) {
  TempDir dir;
  tlkit::NpyWriter writer(dir / "x.npy", torch::kFloat, {3});
  writer.append(torch::ones({2, 3}));
  writer.commit();
  const auto bytes = fs::file_size(dir / "x.npy");
  EXPECT_EQ((bytes - 2 * 3 * 4) % 64, 0u);
  tlkit::NpyReader reader(dir / "x.npy");
  EXPECT_EQ(reader.shape(), (std::vector<int64_t>{2, 3}));
}

TEST(Npy, ReadsWhatNumpyWrites) {
  TempDir dir;
  const auto result = run_numpy(
      "np.save('{dir}/f64.npy', np.arange(12, dtype=np.float64).reshape(3, 4) / 3)\n"
      "np.save('{dir}/u8.npy', np.arange(24, dtype=np.uint8).reshape(2, 3, 4))\n"
      "np.save('{dir}/i32.npy', -np.arange(5, dtype=np.int32))\n"
      "np.save('{dir}/b.npy', np.array([True, False, True]))\n"
      "np.lib.format.write_array(open('{dir}/v2.npy', 'wb'), np.arange(6, dtype=np.float32), "
      "version=(2, 0))\n",
      dir.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto f64 = tlkit::read_npy(dir / "f64.npy");
  EXPECT_EQ(f64.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::equal(f64, torch::arange(12, torch::kDouble).reshape({3, 4}) / 3));
  EXPECT_TRUE(torch::equal(tlkit::read_npy(dir / "u8.npy"),
                           torch::arange(24, torch::kByte).reshape({2, 3, 4})));
  EXPECT_TRUE(torch::equal(tlkit::read_npy(dir / "i32.npy"), -torch::arange(5, torch::kInt)));
  EXPECT_TRUE(torch::equal(tlkit::read_npy(dir / "b.npy"), torch::tensor({true, false, true})));
  EXPECT_TRUE(torch::equal(tlkit::read_npy(dir / "v2.npy"), torch::arange(6, torch::kFloat)));
}

TEST(Npy, ReaderStreamsRowsInChunks) {
  TempDir dir;
  const auto values = torch::randn({10, 4});
  tlkit::write_npy(dir / "x.npy", values);
  tlkit::NpyReader reader(dir / "x.npy");
  EXPECT_EQ(reader.rows(), 10);
  std::vector<torch::Tensor> parts;
  while (reader.rows_left() > 0) parts.push_back(reader.read_rows(3));
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts.back().size(0), 1);
  EXPECT_TRUE(torch::equal(torch::cat(parts), values));
}

TEST(Npy, UncommittedWriterLeavesNoFile) {
  TempDir dir;
  {
    tlkit::NpyWriter writer(dir / "features.npy", torch::kFloat, {2});
    writer.append(torch::zeros({4, 2}));
  }
  EXPECT_TRUE(fs::is_empty(dir.path())) << "temporary file left behind";
}

TEST(Npy, BadInputIsAClearError) {
  TempDir dir;
  tlkit::NpyWriter writer(dir / "x.npy", torch::kFloat, {2});
  EXPECT_THROW(writer.append(torch::zeros({4, 3})), tlkit::Error);
  EXPECT_THROW(writer.append(torch::zeros({4, 2}, torch::kLong)), tlkit::Error);

  std::ofstream(dir / "not.npy") << "hello";
  try {
    tlkit::read_npy(dir / "not.npy");
    FAIL() << "no error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a NumPy .npy file"), std::string::npos) << e.what();
  }
  tlkit::write_npy(dir / "full.npy", torch::ones({8, 8}));
  fs::resize_file(dir / "full.npy", fs::file_size(dir / "full.npy") - 4);
  try {
    tlkit::read_npy(dir / "full.npy");
    FAIL() << "no error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tlkit::read_npy(dir / "missing.npy"), tlkit::Error);
}

// A header whose shape cannot be real (its byte count overflows 64 bits) is refused by name, not
// passed to an allocation.
TEST(Npy, AnOverflowingShapeIsAClearError) {
  tlkit::test::TempDir dir;
  std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }";
  dict.resize(118, ' ');
  dict += "\n";
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(dict.size()) + '\0' +
                      dict + std::string(64, '\0');
  std::ofstream(dir / "big.npy", std::ios::binary) << bytes;
  tlkit::test::expect_error([&] { tlkit::read_npy(dir / "big.npy"); }, "too large to be real");
}

// A damaged shape is refused, not read as the number its first digits make ("2:" is not 2), and
// Python 2's "3L" dimensions are still read.
TEST(Npy, ADimensionWithTrailingBytesIsAClearError) {
  tlkit::test::TempDir dir;
  const auto write = [&](const std::string& name, const std::string& shape) {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    dict.resize(118, ' ');
    dict += "\n";
    std::ofstream(dir / name, std::ios::binary)
        << std::string("\x93NUMPY\x01\x00", 8) << static_cast<char>(dict.size()) << '\0' << dict
        << std::string(4 * 6, '\0');
  };
  write("junk.npy", "(2:, 3)");
  tlkit::test::expect_error([&] { tlkit::read_npy(dir / "junk.npy"); }, "bad shape");
  write("brace.npy", "(5}2, 3)");
  tlkit::test::expect_error([&] { tlkit::read_npy(dir / "brace.npy"); }, "bad shape");
  write("old.npy", "(2L, 3L)");
  EXPECT_EQ(tlkit::read_npy(dir / "old.npy").sizes(), (std::vector<int64_t>{2, 3}));
}
