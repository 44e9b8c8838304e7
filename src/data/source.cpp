// open_source(): source strings to train / val / test datasets.

#include <tlkit/data/dataset.h>

#include <cctype>
#include <filesystem>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/cifar10.h>
#include <tlkit/data/idx.h>
#include <tlkit/data/image_folder.h>
#include <tlkit/data/random.h>
#include <tlkit/data/subset.h>

namespace fs = std::filesystem;

namespace tlkit::data {
namespace {

constexpr const char* kSourceForms = "DIR, cifar10:DIR, fashion-mnist:DIR or mnist:DIR";

// Splits "prefix:rest" when the prefix looks like a scheme (letters, digits, '-').
bool split_prefix(const std::string& source, std::string& prefix, std::string& rest) {
  const auto colon = source.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  for (size_t i = 0; i < colon; ++i) {
    const char c = source[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  prefix = source.substr(0, colon);
  rest = source.substr(colon + 1);
  return true;
}

// The sub-folder of `root` holding a split, if any (first existing of `names`).
fs::path split_folder(const fs::path& root, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    std::error_code error;
    if (fs::is_directory(root / name, error)) return root / name;
  }
  return {};
}

Splits open_image_folder(const fs::path& root, const SourceOptions& options) {
  const auto train_dir = split_folder(root, {"train"});
  const auto val_dir = split_folder(root, {"val", "valid", "validation"});
  const auto test_dir = split_folder(root, {"test"});
  Splits splits;
  if (train_dir.empty() || (val_dir.empty() && test_dir.empty())) {
    splits.train = std::make_shared<ImageFolder>(root, options.strict);
    return splits;
  }
  // train/ + val/ and/or test/: split trees, indexed against train's classes.
  auto train = std::make_shared<ImageFolder>(train_dir, options.strict);
  if (!val_dir.empty())
    splits.val = std::make_shared<ImageFolder>(val_dir, options.strict, train->classes());
  if (!test_dir.empty())
    splits.test = std::make_shared<ImageFolder>(test_dir, options.strict, train->classes());
  if (!val_dir.empty() && options.val_split > 0) {
    logger()->debug("'{}' has its own val folder; val_split {} is not applied", root.string(),
                    options.val_split);
  }
  splits.train = train;
  return splits;
}

Splits open_idx(const fs::path& dir, const std::string& prefix) {
  const auto classes = prefix == "mnist" ? mnist_classes() : fashion_mnist_classes();
  Splits splits;
  splits.train = std::make_shared<IdxDataset>(find_idx_file(dir, "train-images-idx3-ubyte"),
                                              find_idx_file(dir, "train-labels-idx1-ubyte"),
                                              classes, prefix + " train");
  splits.test = std::make_shared<IdxDataset>(find_idx_file(dir, "t10k-images-idx3-ubyte"),
                                             find_idx_file(dir, "t10k-labels-idx1-ubyte"), classes,
                                             prefix + " test");
  return splits;
}

Splits open_prefixed(const std::string& source, const std::string& prefix,
                     const std::string& rest) {
  TLKIT_CHECK(!rest.empty(), "source '", source, "' names no folder after '", prefix,
              ":'; write e.g. ", prefix, ":data/", prefix);
  if (prefix == "cifar10") {
    return Splits{std::make_shared<Cifar10>(rest, Cifar10::Part::kTrain), nullptr,
                  std::make_shared<Cifar10>(rest, Cifar10::Part::kTest)};
  }
  if (prefix == "fashion-mnist" || prefix == "mnist") return open_idx(rest, prefix);
  fail("unknown data source prefix '", prefix, ":' in '", source, "'; use ", kSourceForms);
}

// Keeps at most `limit` samples (stratified, seeded) of a split.
std::shared_ptr<Dataset> limited(std::shared_ptr<Dataset> dataset, size_t limit,
                                 std::uint64_t seed) {
  if (!dataset || limit == 0 || dataset->size() <= limit) return dataset;
  auto chosen = stratified_sample(dataset->labels(), limit, seed);
  return std::make_shared<Subset>(std::move(dataset), std::move(chosen),
                                  "limit " + std::to_string(limit));
}

}  // namespace

std::vector<int64_t> Dataset::labels() const {
  std::vector<int64_t> all;
  all.reserve(size());
  for (size_t i = 0; i < size(); ++i) all.push_back(get(i).label);
  return all;
}

std::string Dataset::source(size_t index) const { return get(index).source; }

std::vector<size_t> class_counts(const Dataset& dataset) {
  std::vector<size_t> counts(dataset.classes().size(), 0);
  for (int64_t label : dataset.labels()) {
    TLKIT_CHECK(label >= 0 && static_cast<size_t>(label) < counts.size(), "label ", label,
                " is outside the ", counts.size(), " classes of ", dataset.describe());
    ++counts[static_cast<size_t>(label)];
  }
  return counts;
}

fs::path source_folder(const std::string& source) {
  std::string prefix, rest;
  std::error_code error;
  if (fs::exists(source, error) || !split_prefix(source, prefix, rest)) return source;
  return rest;
}

void check_output_outside_data(const fs::path& out, const std::string& source,
                               const std::string& option) {
  std::error_code ec;
  const auto data = fs::weakly_canonical(source_folder(source), ec);
  if (ec || data.empty()) return;
  const auto target = fs::weakly_canonical(out, ec);
  if (ec) return;
  auto d = data.begin();
  auto t = target.begin();
  for (; d != data.end() && t != target.end() && *d == *t; ++d, ++t) {
  }
  if (d == data.end() || (std::next(d) == data.end() && d->empty()))  // trailing separator
    fail(option, " '", out.string(), "' is inside the data folder '",
         source_folder(source).string(),
         "': its files would be scanned as a class by every later run on that data; put it "
         "outside, e.g. runs/NAME");
}

Splits open_source(const std::string& source, const SourceOptions& options) {
  TLKIT_CHECK(!source.empty(), "no data source given; use ", kSourceForms);
  TLKIT_CHECK(options.val_split >= 0 && options.val_split < 1, "val split ", options.val_split,
              " is out of range; use a fraction in [0, 1), e.g. 0.2");
  std::string prefix, rest;
  std::error_code error;
  const bool is_folder = fs::exists(source, error) || !split_prefix(source, prefix, rest);
  Splits splits =
      is_folder ? open_image_folder(source, options) : open_prefixed(source, prefix, rest);
  if (!splits.val && options.val_split > 0) {
    auto train = splits.train;
    auto parts = stratified_split(train->labels(), options.val_split, options.seed);
    const auto tag = tlkit::detail::concat(options.val_split);
    splits.val = std::make_shared<Subset>(train, std::move(parts.val), "val split " + tag);
    splits.train = std::make_shared<Subset>(train, std::move(parts.train), "train split " + tag);
  }
  splits.train = limited(splits.train, options.limit, options.seed);
  splits.val = limited(splits.val, options.limit, derive_seed(options.seed, 1));
  splits.test = limited(splits.test, options.limit, derive_seed(options.seed, 2));
  return splits;
}

}  // namespace tlkit::data
