#include <tlkit/core/run_folder.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <set>

#include <unistd.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/json.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/strings.h>

#include "run_folder_lock.h"

namespace fs = std::filesystem;

namespace tlkit {

struct RunFolder::State {
  fs::path dir;  // absolute, normalised
  std::string command;
  std::string id;
  std::string started;
  bool finished = false;
  std::set<std::string> files;  // relative, generic form
  std::set<std::string> aside;  // relative to dir/kAside
  bool created = false;         // this object made the folder
  bool was_empty = false;       // nothing of a run was there when opened
  int lock_fd = -1;
  void save() const;
};

namespace {

std::recursive_mutex& registry_mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}
std::vector<RunFolder::State*>& open_folders() {
  static std::vector<RunFolder::State*> folders;
  return folders;
}

std::string new_run_id() {
  std::random_device device;
  std::uniform_int_distribution<unsigned> nibble(0, 15);
  std::string id;
  for (int i = 0; i < 16; ++i) id += "0123456789abcdef"[nibble(device)];
  return id;
}

fs::path absolute_path(const fs::path& path) {
  std::error_code ec;
  auto absolute = fs::weakly_canonical(path, ec);
  if (ec) absolute = fs::absolute(path, ec);
  return absolute.lexically_normal();
}

// `path` relative to `dir` when inside it ("" otherwise).
std::string inside(const fs::path& dir, const fs::path& path) {
  const auto relative = path.lexically_relative(dir);
  if (relative.empty() || relative == "." || *relative.begin() == "..") return {};
  return relative.generic_string();
}

bool is_own_bookkeeping(const std::string& relative) {
  if (relative == RunFolder::kMarker || relative == RunFolder::kLock) return true;
  // The marker's temporary left by a run killed while it wrote its first marker: the folder holds
  // no run yet, and the temporary is removed with the other stale ones.
  std::string target;
  return is_stale_temporary(relative, target) && target == RunFolder::kMarker;
}

// The folder's entries other than tlkit's own bookkeeping files.
std::vector<std::string> user_visible_entries(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (!is_own_bookkeeping(name)) names.push_back(name);
  }
  TLKIT_CHECK(!ec, "cannot list the folder '", dir.string(), "': ", ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

bool holds_only_bookkeeping(const fs::path& dir) noexcept {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (!is_own_bookkeeping(it->path().filename().string())) return false;
  return !ec;
}

// Commands that may follow one another in a folder: train and finetune runs, or the same command.
std::string folder_kind(const std::string& command) {
  return command == "train" || command == "finetune" ? std::string("run") : command;
}

std::set<std::string> string_set(const Json& json, const std::string& key) {
  std::set<std::string> out;
  if (json.contains(key))
    for (const auto& name : json.at(key).as_string_list()) out.insert(name);
  return out;
}

// Removes the empty folders from `file`'s parent up to (not including) `root`.
void remove_empty_parents(const fs::path& root, const fs::path& file) {
  std::error_code ec;
  for (auto dir = file.parent_path(); dir != root && inside(root, dir) != "";
       dir = dir.parent_path())
    if (!fs::is_empty(dir, ec) || ec || !fs::remove(dir, ec)) break;
}

// Removes the recorded `files` below `base` and the folders they leave empty (up to `root`).
void remove_recorded(const fs::path& root, const fs::path& base,
                     const std::set<std::string>& files) {
  std::error_code ec;
  for (const auto& file : files) {
    fs::remove(base / file, ec);
    remove_empty_parents(root, base / file);
  }
}

RunFolder::State* folder_holding(const fs::path& absolute, std::string& relative) {
  for (auto* state : open_folders()) {
    relative = inside(state->dir, absolute);
    if (!relative.empty()) return state;
  }
  return nullptr;
}

}  // namespace

void RunFolder::State::save() const {
  Json json = Json::object();
  json["tlkit"] = "run folder";
  json["version"] = 1;
  json["id"] = id;
  json["command"] = command;
  json["started"] = started;
  json["finished"] = finished;
  json["files"] = std::vector<std::string>(files.begin(), files.end());
  json["previous_run"] = std::vector<std::string>(aside.begin(), aside.end());
  write_file_atomic(dir / kMarker, json.dump(1) + "\n");
}

RunFolder::RunFolder(fs::path dir, const std::string& command) : state_(std::make_unique<State>()) {
  auto& s = *state_;
  std::error_code ec;
  const auto status = fs::status(dir, ec);
  TLKIT_CHECK(!fs::exists(status) || fs::is_directory(status), "the output folder '", dir.string(),
              "' is a file, not a folder: give a new folder");
  const bool existed = fs::exists(status);
  const auto marker = dir / kMarker;
  Json earlier;
  if (existed && fs::exists(marker)) {
    try {
      earlier = Json::parse(read_file(marker));
      TLKIT_CHECK(earlier.is_object() && earlier.contains("tlkit") && earlier.contains("files"),
                  "not a tlkit run marker");
    } catch (const Error& e) {
      fail("'", marker.string(), "' is damaged (", e.what(), "), so which files of '", dir.string(),
           "' tlkit wrote is unknown: use another folder");
    }
    const auto before = earlier.contains("command") ? earlier.at("command").as_string() : "";
    TLKIT_CHECK(folder_kind(before) == folder_kind(command), "the folder '", dir.string(),
                "' holds the results of 'tlkit ", before, "', which 'tlkit ", command,
                "' would replace: give it a folder of its own");
  } else if (existed) {
    const auto entries = user_visible_entries(dir);
    if (!entries.empty()) {
      std::vector<std::string> shown(entries.begin(),
                                     entries.begin() + std::min<size_t>(entries.size(), 3));
      fail("the folder '", dir.string(), "' holds files that tlkit did not write ('",
           join(shown, "', '"), "'",
           entries.size() > 3 ? ", and " + std::to_string(entries.size() - 3) + " more" : "",
           ") and no tlkit run: tlkit writes only into a new or empty folder or one holding a "
           "tlkit run; give another folder (e.g. '",
           (dir / "run").string(), "'), or move those files away");
    }
  }
  if (!existed) {
    fs::create_directories(dir, ec);
    TLKIT_CHECK(!ec, "cannot create the folder '", dir.string(), "': ", ec.message());
    s.created = true;
  }
  s.dir = absolute_path(dir);
  s.command = command;
  s.lock_fd = detail::take_lock(s.dir, command);
  if (earlier.is_object()) {
    s.id = earlier.contains("id") ? earlier.at("id").as_string() : new_run_id();
    s.started = earlier.contains("started") ? earlier.at("started").as_string() : detail::utc_now();
    s.finished = earlier.contains("finished") && earlier.at("finished").as_bool();
    s.files = string_set(earlier, "files");
    s.aside = string_set(earlier, "previous_run");
  } else {
    s.id = new_run_id();
    s.started = detail::utc_now();
  }
  s.was_empty = s.files.empty() && s.aside.empty();
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  open_folders().push_back(&s);
  if (!earlier.is_object()) s.save();
}

RunFolder::~RunFolder() {
  auto& s = *state_;
  {
    std::lock_guard<std::recursive_mutex> lock(registry_mutex());
    auto& folders = open_folders();
    folders.erase(std::remove(folders.begin(), folders.end(), &s), folders.end());
  }
  std::error_code ec;
  if (s.was_empty && s.files.empty() && s.aside.empty() && holds_only_bookkeeping(s.dir)) {
    fs::remove(s.dir / kMarker, ec);
    fs::remove(s.dir / kLock, ec);
    if (s.created) fs::remove(s.dir, ec);
  } else if (s.lock_fd >= 0) {
    [[maybe_unused]] const auto ignored = ::ftruncate(s.lock_fd, 0);  // released, not stale
  }
  if (s.lock_fd >= 0) ::close(s.lock_fd);
}

const fs::path& RunFolder::dir() const { return state_->dir; }

std::vector<std::string> RunFolder::files() const {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  return {state_->files.begin(), state_->files.end()};
}

bool RunFolder::owns(const fs::path& path) const {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  const auto relative = inside(state_->dir, absolute_path(path));
  if (relative.empty()) return false;
  if (state_->files.count(relative)) return true;
  const auto in_aside = inside(fs::path(kAside), fs::path(relative));
  return !in_aside.empty() && state_->aside.count(in_aside) > 0;
}

void RunFolder::start_afresh(const std::vector<std::string>& kept_folders) {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  auto& s = *state_;
  const auto is_kept = [&](const std::string& relative) {
    const auto top = fs::path(relative).begin()->string();
    return std::find(kept_folders.begin(), kept_folders.end(), top) != kept_folders.end();
  };
  std::set<std::string> kept, earlier;
  std::error_code ec;
  for (const auto& file : s.files) {
    if (is_kept(file))
      kept.insert(file);
    else if (fs::exists(fs::symlink_status(s.dir / file, ec)))
      earlier.insert(file);
  }
  const fs::path aside = s.dir / kAside;
  const bool keep_older = !s.finished && !s.aside.empty();
  if (!earlier.empty() && !keep_older) {
    // Every destination must be free or tlkit's before anything moves.
    for (const auto& file : earlier) {
      const auto target = aside / file;
      TLKIT_CHECK(s.aside.count(file) || !fs::exists(fs::symlink_status(target, ec)), "'",
                  target.string(),
                  "' is in the way of setting the earlier run aside and tlkit "
                  "did not write it: move it away");
    }
  }
  if (!earlier.empty() && keep_older) {
    logger()->info(
        "{}: removing the unfinished earlier run's {} files (the last finished run "
        "stays in {}/)",
        s.dir.string(), earlier.size(), kAside);
    remove_recorded(s.dir, s.dir, earlier);
  } else if (!earlier.empty()) {
    if (!s.aside.empty())
      logger()->info("{}: removing the run set aside before in {}/", s.dir.string(), kAside);
    remove_recorded(s.dir, aside, s.aside);
    s.aside.clear();
    for (const auto& file : earlier) {
      fs::create_directories((aside / file).parent_path(), ec);
      fs::rename(s.dir / file, aside / file, ec);
      if (ec) {
        s.save();  // what moved is recorded as set aside, the rest as the earlier run's
        fail("cannot move '", (s.dir / file).string(), "' aside to '", (aside / file).string(),
             "': ", ec.message());
      }
      s.files.erase(file);
      s.aside.insert(file);
      remove_empty_parents(s.dir, s.dir / file);
    }
    logger()->info(
        "{}: the earlier {} run ({} files) was moved to {}/; it is removed once this "
        "run has finished",
        s.dir.string(), s.finished ? "finished" : "unfinished", earlier.size(),
        (s.dir / kAside).string());
  }
  s.files = kept;
  s.id = new_run_id();
  s.started = detail::utc_now();
  s.finished = false;
  s.save();
}

void RunFolder::mark_finished() {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  auto& s = *state_;
  if (!s.aside.empty()) {
    const fs::path aside = s.dir / kAside;
    remove_recorded(s.dir, aside, s.aside);
    logger()->info("removed the earlier run set aside in {} (this run has finished)",
                   aside.string());
    s.aside.clear();
  }
  s.finished = true;
  s.save();
}

std::size_t RunFolder::remove_stale_temporaries() {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  const auto& s = *state_;
  std::set<fs::path> folders{s.dir};
  for (const auto& file : s.files) folders.insert((s.dir / file).parent_path());
  std::size_t removed = 0;
  for (const auto& folder : folders) {
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
      std::string target;
      if (!is_stale_temporary(it->path().filename().string(), target)) continue;
      const auto relative = inside(s.dir, folder / target);
      const bool own = s.files.count(relative) || (relative == kMarker);
      std::error_code ignored;
      if (own && it->is_regular_file(ignored) && fs::remove(it->path(), ignored)) ++removed;
    }
  }
  if (removed)
    logger()->info("removed {} unfinished temporary file{} of a killed run in {}", removed,
                   removed == 1 ? "" : "s", s.dir.string());
  return removed;
}

void note_written(const fs::path& path) {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  if (open_folders().empty()) return;
  std::string relative;
  auto* state = folder_holding(absolute_path(path), relative);
  if (!state || is_own_bookkeeping(relative) || state->files.count(relative)) return;
  std::error_code ec;
  TLKIT_CHECK(!fs::exists(fs::symlink_status(state->dir / relative, ec)), "'",
              (state->dir / relative).string(), "' is in the tlkit folder '", state->dir.string(),
              "' but tlkit did not write it, so it is not replaced: move it away and rerun");
  state->files.insert(relative);
  state->save();
}

bool remove_own_file(const fs::path& path) {
  std::lock_guard<std::recursive_mutex> lock(registry_mutex());
  std::string relative;
  auto* state = folder_holding(absolute_path(path), relative);
  std::error_code ec;
  if (!state) return fs::remove(path, ec);
  if (!state->files.count(relative)) return false;
  const bool removed = fs::remove(path, ec);
  state->files.erase(relative);
  state->save();
  return removed;
}

}  // namespace tlkit
