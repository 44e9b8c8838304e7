#pragma once
// Datasets: random access to labelled images, and the sources they are opened from.
//
// A Dataset hands out Samples (uint8 HWC images, C = 1 or 3 in RGB order, before any transform)
// by index. get() must be safe to call from several threads at once: the DataLoader decodes on
// worker threads. open_source() turns a source string ("DIR", "cifar10:DIR", "fashion-mnist:DIR",
// "mnist:DIR") into train / val / test datasets, with a stratified, seeded val split when the
// source has no val set of its own.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace tlkit::data {

// One labelled image as stored: uint8, H x W x C with C = 1 (grey) or 3 (RGB).
struct Sample {
  at::Tensor image;
  int64_t label = 0;
  std::string source;  // a file path, or "file#record" for images stored in record files
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  // The sample at `index` (< size()); thread-safe. Throws tlkit::Error naming the file on failure.
  virtual Sample get(size_t index) const = 0;
  // Where sample `index` comes from (Sample::source) without decoding it. The default decodes.
  virtual std::string source(size_t index) const;
  virtual const std::vector<std::string>& classes() const = 0;
  // Every label, in index order, without decoding images (for stratified splits and statistics).
  // The default decodes each sample; every tlkit dataset overrides it.
  virtual std::vector<int64_t> labels() const;
  // One line, e.g. "image folder 'x' (1200 images, 5 classes)".
  virtual std::string describe() const = 0;
  // Files left out when the dataset was opened (corrupt or not images); see ImageFolder.
  virtual size_t skipped() const { return 0; }
};

struct SourceOptions {
  // Fraction of the training set moved to a validation set, per class, when the source has no
  // validation set of its own (0 = no validation set). Must be in [0, 1).
  double val_split = 0;
  std::uint64_t seed = 0;  // drives the val split and the `limit` subset
  bool strict = false;     // a corrupt or non-image file is an Error instead of a skip + warning
  size_t limit = 0;        // keep at most this many samples per split (stratified, seeded); 0 = all
};

struct Splits {
  std::shared_ptr<Dataset> train;
  std::shared_ptr<Dataset> val;   // may be null
  std::shared_ptr<Dataset> test;  // may be null
};

// Opens a source:
//   DIR                  image folder: DIR/<class>/... or DIR/train/<class>/... (+ val/, test/)
//   cifar10:DIR          CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin)
//   fashion-mnist:DIR    IDX files (train-images-idx3-ubyte[.gz], ..., t10k-labels-idx1-ubyte[.gz])
//   mnist:DIR            the same, with the digits as class names
// Throws tlkit::Error that names the file and the fix on any problem.
Splits open_source(const std::string& source, const SourceOptions& options = {});

// The folder a source reads (DIR of "DIR" or "cifar10:DIR"), for checks such as an output folder
// placed inside the data.
std::filesystem::path source_folder(const std::string& source);

// Throws when `out` is `source`'s folder or lies inside it: a run or feature folder there would
// be scanned as a class folder by every later run on that data. `option` names the flag.
void check_output_outside_data(const std::filesystem::path& out, const std::string& source,
                               const std::string& option = "--out");

// Counts per class, indexed by label (size = number of classes).
std::vector<size_t> class_counts(const Dataset& dataset);

}  // namespace tlkit::data
