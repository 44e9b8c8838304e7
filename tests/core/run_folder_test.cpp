// RunFolder: a folder is tlkit's or untouched, one writer at a time, an earlier run set aside (not
// deleted) until the new one has finished, and only tlkit's own temporaries swept.

#include <fstream>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/json.h>
#include <tlkit/core/run_folder.h>

#include "support/test_support.h"

namespace fs = std::filesystem;
using tlkit::RunFolder;
using tlkit::test::expect_error;
using tlkit::test::TempDir;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// The PID of a process that has ended (a child reaped at once).
pid_t dead_pid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  int status = 0;
  waitpid(child, &status, 0);
  return child;
}

std::vector<std::string> recorded(const fs::path& dir) {
  return tlkit::Json::parse(tlkit::read_file(dir / RunFolder::kMarker))
      .at("files")
      .as_string_list();
}

}  // namespace

TEST(RunFolder, RefusesAFolderHoldingFilesItDidNotWrite) {
  TempDir tmp;
  const auto dir = tmp / "proj";
  write_text(dir / "snapshots" / "holiday.jpg", "photo");
  expect_error([&] { RunFolder folder(dir, "train"); }, "'snapshots'");  // names what is there
  expect_error([&] { RunFolder folder(dir, "train"); }, "tlkit did not write");
  EXPECT_TRUE(fs::exists(dir / "snapshots" / "holiday.jpg"));
  EXPECT_FALSE(fs::exists(dir / RunFolder::kMarker));
  EXPECT_FALSE(fs::exists(dir / RunFolder::kLock));
}

TEST(RunFolder, ARunKilledWhileWritingItsFirstMarkerLeavesAFolderItCanStartIn) {
  TempDir tmp;
  const auto dir = tmp / "run";
  const auto pid = std::to_string(dead_pid());
  // Killed between creating the marker's temporary and renaming it: no marker, one temporary.
  const auto left = dir / ("." + std::string(RunFolder::kMarker) + ".tmp." + pid + ".0");
  write_text(left, "{\"tlkit\": ");
  {
    RunFolder folder(dir, "train");
    EXPECT_TRUE(fs::exists(dir / RunFolder::kMarker));
    EXPECT_EQ(folder.remove_stale_temporaries(), 1u);
  }
  EXPECT_FALSE(fs::exists(left));
  // Another file's temporary is the user's: still refused.
  const auto other = tmp / "other";
  write_text(other / (".notes.txt.tmp." + pid + ".0"), "partial");
  expect_error([&] { RunFolder folder(other, "train"); }, "tlkit did not write");
}

TEST(RunFolder, RecordsWhatItWritesAndNeverReplacesAnotherFile) {
  TempDir tmp;
  const auto dir = tmp / "run";
  RunFolder folder(dir, "train");
  tlkit::write_file_atomic(dir / "checkpoints" / "last.pt", "weights");
  EXPECT_EQ(recorded(dir), std::vector<std::string>{"checkpoints/last.pt"});
  EXPECT_TRUE(folder.owns(dir / "checkpoints" / "last.pt"));
  write_text(dir / "notes.txt", "mine");  // the user's, dropped in while the run goes on
  expect_error([&] { tlkit::write_file_atomic(dir / "notes.txt", "tlkit"); }, "did not write it");
  EXPECT_EQ(tlkit::read_file(dir / "notes.txt"), "mine");
  EXPECT_FALSE(tlkit::remove_own_file(dir / "notes.txt"));
  EXPECT_TRUE(fs::exists(dir / "notes.txt"));
}

TEST(RunFolder, AFolderOpenedInVainLeavesNoTrace) {
  TempDir tmp;
  { RunFolder folder(tmp / "new", "extract"); }
  EXPECT_FALSE(fs::exists(tmp / "new"));
  fs::create_directories(tmp / "empty");
  { RunFolder folder(tmp / "empty", "extract"); }
  EXPECT_TRUE(fs::exists(tmp / "empty"));
  EXPECT_TRUE(fs::is_empty(tmp / "empty"));
}

TEST(RunFolder, OneWriterAtATimeAndADeadHoldersLockIsTakenOver) {
  TempDir tmp;
  const auto dir = tmp / "run";
  {
    RunFolder first(dir, "train");
    tlkit::write_file_atomic(dir / "config.json", "{}");
    expect_error([&] { RunFolder second(dir, "train"); }, "pid " + std::to_string(getpid()));
  }
  // A killed holder leaves its PID behind; the kernel released its lock.
  write_text(dir / RunFolder::kLock, std::to_string(dead_pid()) + " (tlkit train)\n");
  RunFolder again(dir, "train");
  EXPECT_EQ(recorded(dir), std::vector<std::string>{"config.json"});
}

TEST(RunFolder, AnotherCommandsFolderIsRefused) {
  TempDir tmp;
  const auto dir = tmp / "features";
  {
    RunFolder folder(dir, "extract");
    tlkit::write_file_atomic(dir / "features.npy", "x");
  }
  expect_error([&] { RunFolder folder(dir, "finetune"); }, "tlkit extract");
  RunFolder same(dir, "extract");
}

TEST(RunFolder, AFreshStartSetsTheEarlierRunAsideUntilTheNewOneFinishes) {
  TempDir tmp;
  const auto dir = tmp / "run";
  {
    RunFolder folder(dir, "finetune");
    tlkit::write_file_atomic(dir / "model.pt", "old model");
    tlkit::write_file_atomic(dir / "snapshots" / "snapshot_1.pt", "old snapshot");
    tlkit::write_file_atomic(dir / "features" / "train" / "features.npy", "cache");
    folder.mark_finished();
  }
  write_text(dir / "snapshots" / "holiday.jpg", "photo");  // the user's, inside a tlkit folder
  {
    RunFolder folder(dir, "finetune");
    folder.start_afresh({"features"});
    EXPECT_FALSE(fs::exists(dir / "model.pt"));
    EXPECT_EQ(tlkit::read_file(dir / "previous-run" / "model.pt"), "old model");
    EXPECT_EQ(tlkit::read_file(dir / "previous-run" / "snapshots" / "snapshot_1.pt"),
              "old snapshot");
    EXPECT_TRUE(fs::exists(dir / "features" / "train" / "features.npy"));  // a keyed cache stays
    EXPECT_TRUE(folder.owns(dir / "previous-run" / "model.pt"));
    tlkit::write_file_atomic(dir / "model.pt", "new model");
    folder.mark_finished();
  }
  EXPECT_FALSE(fs::exists(dir / "previous-run"));
  EXPECT_EQ(tlkit::read_file(dir / "model.pt"), "new model");
  EXPECT_EQ(tlkit::read_file(dir / "snapshots" / "holiday.jpg"), "photo");
}

TEST(RunFolder, AnUnfinishedRunGoesButTheLastFinishedOneStaysAside) {
  TempDir tmp;
  const auto dir = tmp / "run";
  {
    RunFolder folder(dir, "train");
    tlkit::write_file_atomic(dir / "model.pt", "finished");
    folder.mark_finished();
  }
  {
    RunFolder folder(dir, "train");
    folder.start_afresh();
    tlkit::write_file_atomic(dir / "checkpoints" / "last.pt", "killed run");
  }  // never finished
  RunFolder folder(dir, "train");
  folder.start_afresh();
  EXPECT_FALSE(fs::exists(dir / "checkpoints"));
  EXPECT_EQ(tlkit::read_file(dir / "previous-run" / "model.pt"), "finished");
}

TEST(RunFolder, SweepsOnlyItsOwnTemporariesInItsOwnFolders) {
  TempDir tmp;
  const auto dir = tmp / "run";
  RunFolder folder(dir, "train");
  tlkit::write_file_atomic(dir / "model.pt", "model");
  const auto pid = std::to_string(dead_pid());
  const auto own = dir / (".model.pt.tmp." + pid + ".0");
  const auto users = dir / (".photo.jpg.tmp." + pid + ".0");
  const auto below = dir / "mine" / "deeper" / (".model.pt.tmp." + pid + ".0");
  for (const auto& file : {own, users, below}) write_text(file, "partial");
  EXPECT_EQ(folder.remove_stale_temporaries(), 1u);
  EXPECT_FALSE(fs::exists(own));
  EXPECT_TRUE(fs::exists(users));
  EXPECT_TRUE(fs::exists(below));
}
