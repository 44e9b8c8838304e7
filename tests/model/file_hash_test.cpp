#include <tlkit/model/file_hash.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "support/test_support.h"

namespace fs = std::filesystem;
using tlkit::model::sha256_file;
using tlkit::model::sha256_hex;
using tlkit::test::TempDir;

namespace {

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Bytes that differ from block to block (a fixed LCG), so a chunk hashed twice or skipped shows.
std::string pseudo_random_bytes(size_t size) {
  std::string bytes(size, '\0');
  std::uint32_t state = 12345;
  for (auto& byte : bytes) {
    state = state * 1664525u + 1013904223u;
    byte = static_cast<char>(state >> 24);
  }
  return bytes;
}

}  // namespace

// The FIPS 180-2 (appendix B) and NIST example vectors.
TEST(FileHash, Sha256OfBytesMatchesTheNistVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(FileHash, EmptyFileHasTheEmptyDigest) {
  TempDir dir;
  write_file(dir / "empty.bin", "");
  EXPECT_EQ(sha256_file(dir / "empty.bin"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// A file of several read chunks with a partial last one hashes as Python's hashlib does, and as
// its bytes do.
TEST(FileHash, MultiChunkFileMatchesPythonHashlib) {
  TempDir dir;
  const auto path = dir / "model.bin";
  const auto bytes = pseudo_random_bytes((size_t{9} << 20) + 12345);
  write_file(path, bytes);
  const auto python = tlkit::test::run_command(
      tlkit::test::torch_python() + " -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], " +
      "\"rb\").read()).hexdigest())' " + tlkit::test::quoted(path));
  ASSERT_EQ(python.exit_code, 0) << python.output;
  ASSERT_EQ(python.output.size(), 65u) << python.output;  // 64 hex digits and a newline

  const auto digest = sha256_file(path);
  EXPECT_EQ(digest, python.output.substr(0, 64));
  EXPECT_EQ(digest, sha256_hex(bytes));
}

TEST(FileHash, UnreadableFilesAreClearErrors) {
  TempDir dir;
  tlkit::test::expect_error([&] { sha256_file(dir / "missing.pt"); },
                            "cannot read '" + (dir / "missing.pt").string() + "' to hash it");
  tlkit::test::expect_error([&] { sha256_file(dir.path()); },
                            "failed while hashing it");
}
