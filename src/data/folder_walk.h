#pragma once
// The folder scan's walk (internal to ImageFolder): the files below a class folder as
// torchvision's os.walk(followlinks=True) finds them, less names starting with '.', and without
// leaving the data folder through symlinks.
//
// A symlink to a folder is followed, except one whose target contains the data folder (the data
// folder itself, a folder above it, '/') or a folder the walk is already inside: following those
// would scan the same images again and again or walk the whole disk, so each is skipped with a
// warning naming the link, as is a symlink that leads back to itself. A sub-folder that cannot be
// read is skipped with a warning naming it and the reason; a class folder that cannot be read,
// or that is a symlink to a folder containing the data folder, is an error.

#include <cstddef>
#include <filesystem>
#include <vector>

namespace tlkit::data {

struct FolderWalk {
  std::vector<std::filesystem::path> files;  // regular files (or links to them), unsorted
  std::size_t hidden = 0;                    // entries left out for a name starting with '.'
};

// Walks the class folder `folder` of the data folder whose canonical path is `root`.
FolderWalk walk_class_folder(const std::filesystem::path& folder,
                             const std::filesystem::path& root);

// A name starting with '.' (left out of the scan, as torchvision does not).
bool is_hidden(const std::filesystem::path& path);

// True when `inner` is `outer` or lies below it (compared component by component).
bool path_contains(const std::filesystem::path& outer, const std::filesystem::path& inner);

}  // namespace tlkit::data
