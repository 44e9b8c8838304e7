#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace fs = std::filesystem;

TEST(AtomicFile, CommitReplacesTargetAndLeavesNoTemporary) {
  tlkit::test::TempDir dir;
  const auto target = dir / "sub" / "out.txt";
  tlkit::write_file_atomic(target, "first");
  tlkit::write_file_atomic(target, "second");
  EXPECT_EQ(tlkit::read_file(target), "second");
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(target.parent_path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST(AtomicFile, FailureBeforeCommitKeepsOldContents) {
  tlkit::test::TempDir dir;
  const auto target = dir / "out.txt";
  tlkit::write_file_atomic(target, "old");
  try {
    tlkit::AtomicFile file(target);
    file.stream() << "half written";
    throw std::runtime_error("simulated failure");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(tlkit::read_file(target), "old");
  EXPECT_FALSE(fs::exists(dir / ".out.txt.tmp"));
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1u);
}

TEST(AtomicFile, UnreadableFileIsAClearError) {
  try {
    tlkit::read_file("/nonexistent/tlkit/file.bin");
    FAIL() << "expected tlkit::Error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tlkit/file.bin"), std::string::npos);
  }
}
