#pragma once
// A folder tlkit writes a command's results into (a training run, an extraction, a bench, an LR
// range test) is tlkit's alone, and only what tlkit wrote there is ever removed or replaced.
//
// - Ownership: a command writes into a new or empty folder, or into one holding a tlkit run (the
//   marker file `.tlkit-run.json`, with the run's identity). Any other folder is refused before
//   anything is written to it.
// - Manifest: the marker lists every file tlkit wrote there (note_written, called by AtomicFile and
//   the other writers before a file is created). A path tlkit did not record is never removed or
//   replaced: writing over a file tlkit did not write is refused.
// - One writer: the folder's lock `.tlkit.lock` (flock, advisory) is held while the folder is open;
//   a second writer is refused naming the holder's PID. The kernel releases it when a process
//   dies, so the lock of a killed process is taken over.
// - A fresh start over an earlier run moves that run's files to `previous-run/` (named in the log;
//   removed once the new run has finished), or, when the earlier run never finished and an older
//   finished run is already aside, removes the unfinished one. Nothing is deleted by name pattern.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tlkit {

class RunFolder {
 public:
  static constexpr const char* kMarker = ".tlkit-run.json";
  static constexpr const char* kLock = ".tlkit.lock";
  static constexpr const char* kAside = "previous-run";

  // Opens `dir` for `command` (e.g. "finetune"): checks that it is new, empty or a tlkit run
  // folder, creates it, takes its lock. Throws tlkit::Error naming the folder and what to do.
  RunFolder(std::filesystem::path dir, const std::string& command);
  // Releases the lock; a folder this object created and nothing was written to is removed again.
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::filesystem::path& dir() const;
  // The files an earlier run recorded here (relative paths), empty in a new folder.
  std::vector<std::string> files() const;
  // Whether `path` is a file tlkit recorded in this folder, or in the run set aside in it.
  bool owns(const std::filesystem::path& path) const;

  // A new run replaces the earlier one: the earlier run's files, except those under
  // `kept_folders` (keyed caches, e.g. "features"), are set aside as described above.
  void start_afresh(const std::vector<std::string>& kept_folders = {});
  // The run has written its result: the run set aside by start_afresh is removed.
  void mark_finished();
  // Removes the temporaries (`.<file>.tmp.<pid>.<n>`) of recorded files that processes no longer
  // running left in the folders this run writes (not below them). Returns how many.
  std::size_t remove_stale_temporaries();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// Records that tlkit is about to write `path`. Inside an open run folder the path joins its
// manifest; an existing file there that tlkit did not record is refused (tlkit::Error). Outside
// every open run folder this does nothing.
void note_written(const std::filesystem::path& path);

// Removes `path` if it is a file tlkit recorded in the open run folder holding it, or if no open
// run folder holds it. Returns whether a file was removed; a file tlkit did not write stays.
bool remove_own_file(const std::filesystem::path& path);

}  // namespace tlkit
