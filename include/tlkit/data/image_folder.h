#pragma once
// Image folders: one sub-folder per class, like torchvision's ImageFolder.
//
// The rule is torchvision's ImageFolder on the same folder, less hidden entries: classes are the
// sub-folder names sorted by name (byte order = Python's code-point order), indexed 0..C-1; images
// are the files below each class folder, recursively (symlinks followed), with torchvision's
// extensions (jpg jpeg png ppm bmp pgm tif tiff webp) in any letter case, in torchvision's order
// (folder by folder in sorted(os.walk()) order, names sorted within a folder). Names starting with
// '.' are left out: a hidden class folder (.ipynb_checkpoints) is warned about, as torchvision
// would count it as a class and shift every later label index; hidden files inside classes
// (macOS "._x.jpg" forks) are counted in one line. Any byte sequence the file system allows works
// as a name (spaces, UTF-8). Decoding is lazy (at get()) and uses OpenCV.
//
// Corrupt files: each file's signature and end (JPEG end-of-image marker, PNG IEND chunk, BMP and
// WebP sizes from the header) are checked when the folder is scanned, which is cheap and catches
// non-images, renamed files and truncated downloads before any training starts. Such a file is left
// out with one warning naming it and counted in skipped() (or is a tlkit::Error when strict). A
// file that passes the scan but still cannot be decoded is a tlkit::Error at get(), naming the
// file, so a batch never holds garbage.
//
// Reruns: each file's check is remembered in a scan cache (one file per folder under
// scan_cache_folder()) together with the file's size, modification and change times, inode and
// device; an unchanged file is not opened again, any change to it (in place, by rename, through
// a symlink) makes it checked anew. The folder is still listed every time, so added, removed and
// renamed files and folders are always seen.

#include <filesystem>
#include <string>
#include <vector>

#include <tlkit/data/dataset.h>
#include <tlkit/data/image_io.h>

namespace tlkit::data {

// Where scan caches live: $TLKIT_CACHE_DIR/scans, else $XDG_CACHE_HOME/tlkit/scans, else
// ~/.cache/tlkit/scans. TLKIT_CACHE_DIR set to "", "off" or "none" turns caching off (empty path).
std::filesystem::path scan_cache_folder();

class ScanCache;

class ImageFolder : public Dataset {
 public:
  // Scans `root`. With `classes` empty the class list is the sorted sub-folder names; otherwise
  // sub-folders are indexed against `classes` (a val/test tree of a split source, which may lack
  // some classes but must not add new ones).
  explicit ImageFolder(std::filesystem::path root, bool strict = false,
                       std::vector<std::string> classes = {});

  size_t size() const override { return files_.size(); }
  Sample get(size_t index) const override;
  std::string source(size_t index) const override;
  const std::vector<std::string>& classes() const override { return classes_; }
  std::vector<int64_t> labels() const override { return labels_; }
  std::string describe() const override;
  size_t skipped() const override { return skipped_; }

  const std::filesystem::path& root() const { return root_; }
  const std::filesystem::path& file(size_t index) const { return files_.at(index); }
  // Files the scan checked (opened) and files whose remembered check it reused.
  size_t files_checked() const { return checked_; }
  size_t files_reused() const { return reused_; }

 private:
  void scan_class(const std::filesystem::path& folder, int64_t label, bool strict,
                  ScanCache& cache);

  std::filesystem::path root_;
  std::vector<std::string> classes_;
  std::vector<std::filesystem::path> files_;
  std::vector<int64_t> labels_;
  size_t skipped_ = 0;
  size_t hidden_ = 0;  // hidden files and folders inside class folders
  size_t checked_ = 0, reused_ = 0;
};

}  // namespace tlkit::data
