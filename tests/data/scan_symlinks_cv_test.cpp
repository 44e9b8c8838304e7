// The folder scan and symlinks: links that lead back into the data folder, above it or to
// themselves are skipped with one warning naming each (the scan never leaves the data folder
// upward, never walks '/'); links to folders elsewhere are still followed; a class folder that
// cannot be read is an error naming it.

#include <tlkit/core/error.h>
#include <tlkit/data/image_folder.h>
#include <tlkit/data/image_io.h>

#include <unistd.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "support/log_capture.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using tlkit::data::ImageFolder;
using tlkit::test::contains;
using tlkit::test::LogCapture;
using tlkit::test::TempDir;

namespace {

void fill_class(const fs::path& folder, int count) {
  fs::create_directories(folder);
  torch::manual_seed(3);
  for (int i = 0; i < count; ++i)
    tlkit::data::write_image(folder / (std::to_string(i) + ".png"),
                             torch::randint(0, 256, {6, 6, 3}, torch::kUInt8));
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// The lines of `log` that warn about `link`.
size_t warnings_naming(const LogCapture& log, const fs::path& link) {
  size_t n = 0;
  for (const auto& line : log.lines()) n += contains(line, "'" + link.string() + "'");
  return n;
}

}  // namespace

TEST(ScanSymlinks, LinksBackIntoOrAboveTheDataFolderAreSkippedOnce) {
  TempDir dir;
  const auto root = dir / "data";
  fill_class(root / "a", 2);
  fill_class(root / "b" / "inner", 3);
  fill_class(dir / "elsewhere", 1);
  const std::vector<std::pair<fs::path, fs::path>> links{
      {root / "a" / "to_root", root},                  // the data folder itself
      {root / "a" / "to_parent", dir.path()},          // a folder above it
      {root / "a" / "to_slash", "/"},                  // the whole disk
      {root / "b" / "inner" / "to_b", root / "b"},     // a folder the scan is inside: a loop
      {root / "b" / "to_outside", dir / "elsewhere"},  // elsewhere: followed
  };
  for (const auto& [link, target] : links) fs::create_directory_symlink(target, link);
  fs::create_symlink(root / "a" / "self", root / "a" / "self");  // leads back to itself
  LogCapture log;
  ImageFolder folder(root);
  EXPECT_EQ(folder.size(), 2u + 3u + 1u);  // the outside image once, nothing twice
  for (size_t i = 0; i + 1 < links.size(); ++i)
    EXPECT_EQ(warnings_naming(log, links[i].first), 1u) << links[i].first << "\n" << log.text();
  EXPECT_EQ(warnings_naming(log, links.back().first), 0u) << log.text();
  EXPECT_EQ(warnings_naming(log, root / "a" / "self"), 1u) << log.text();
  EXPECT_TRUE(contains(log.text(), "symlink loop")) << log.text();
  EXPECT_FALSE(contains(log.text(), "/proc")) << log.text();
  EXPECT_EQ(count_of(log.text(), "to_b/to_b"), 0u) << log.text();
}

TEST(ScanSymlinks, AClassFolderLinkedToAnAncestorIsAnError) {
  TempDir dir;
  const auto root = dir / "data";
  fill_class(root / "a", 1);
  fs::create_directory_symlink("/", root / "b");
  try {
    ImageFolder folder(root);
    ADD_FAILURE() << "no error";
  } catch (const tlkit::Error& e) {
    EXPECT_TRUE(contains(e.what(), "class folder '" + (root / "b").string() + "' is a symlink"))
        << e.what();
    EXPECT_TRUE(contains(e.what(), "contains the data folder")) << e.what();
  }
}

// As root, every folder is readable: the check needs another user.
TEST(ScanSymlinks, AnUnreadableClassFolderIsNamedWithTheReason) {
  if (::geteuid() == 0) GTEST_SKIP() << "runs as root, who can read any folder";
  TempDir dir;
  const auto root = dir / "data";
  fill_class(root / "a", 1);
  fill_class(root / "b", 1);
  fs::permissions(root / "b", fs::perms::none);
  std::string message = "(no error)";
  try {
    ImageFolder folder(root);
  } catch (const tlkit::Error& e) {
    message = e.what();
  }
  fs::permissions(root / "b", fs::perms::owner_all);
  EXPECT_TRUE(contains(
      message, "cannot read class folder '" + (root / "b").string() + "': Permission denied"))
      << message;
}
