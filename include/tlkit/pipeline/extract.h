#pragma once
// Feature extraction to disk — stage 1 of transfer learning ("use the CNN as a fixed feature
// extractor": Razavian et al. 2014, "CNN Features off-the-shelf"; Donahue et al. 2014, "DeCAF").
//
// extract_features runs the frozen backbone once over a dataset (eval mode, no gradients, the
// model's own preprocessing) and writes, into one folder:
//   features.npy   float32 [N, D]  the flattened output of one layer (default: the head's input)
//   labels.npy     int64   [N]
//   manifest.json  model SHA-256, layer, preprocessing, class names, dataset, source file per row
// Rows are streamed batch by batch (memory does not grow with N). Each file is written to a
// temporary name and renamed at the end; the old manifest is removed before the new files land
// and the manifest is written last, so a folder with a manifest always holds a complete set, and a
// failed run leaves no features.npy behind. load_features reads a folder back and checks it
// (shapes, and optionally that it came from the given model file).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <tlkit/core/json.h>
#include <tlkit/data/dataset.h>
#include <tlkit/data/transforms.h>
#include <tlkit/model/classifier.h>

namespace tlkit::pipeline {

struct ExtractOptions {
  std::string layer;  // empty: Classifier::penultimate_layer() (e.g. "classifier.4")
  size_t batch_size = 64;
  size_t workers = 2;  // decoding threads
  size_t limit = 0;    // at most this many rows; 0 = all
  c10::Device device = c10::kCPU;
  std::string source;        // recorded in the manifest (e.g. "fashion-mnist:DIR")
  std::string split;         // recorded in the manifest ("train", "val", "test", "all")
  std::string model_sha256;  // empty: hash of the model's file (or of its serialised bytes)
  bool strict = false;       // an unreadable image is an error (else left out with a warning)
  // The forward's arithmetic (train/precision.h: fp32, tf32, bf16, fp16; recorded in the key when
  // not fp32) and memory layout.
  std::string precision = "fp32";
  bool channels_last = false;
};

struct ExtractResult {
  std::filesystem::path dir;
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  std::string layer;
  double seconds = 0;
};

ExtractResult extract_features(model::Classifier& model,
                               std::shared_ptr<const data::Dataset> dataset,
                               const std::filesystem::path& out_dir,
                               const ExtractOptions& options = {});

// Several layers' features from one pass over the images: the backbone runs once per batch, up
// to the deepest of the layers, and each layer's rows go into its own folder with the files and
// manifest extract_features writes for that layer alone (options.layer is not used). One result
// per folder, in order; `seconds` is the shared pass's.
struct LayerFolder {
  std::string layer;
  std::filesystem::path dir;
};
std::vector<ExtractResult> extract_features(model::Classifier& model,
                                            std::shared_ptr<const data::Dataset> dataset,
                                            const std::vector<LayerFolder>& folders,
                                            const ExtractOptions& options = {});

struct FeatureSet {
  at::Tensor features;  // float32 [N, D]
  at::Tensor labels;    // int64 [N]
  std::string layer;
  std::string model_sha256;
  std::vector<std::string> class_names;
  std::vector<std::string> sources;  // one per row
  Json manifest;
};

// Data parallel extraction (train::world() set): every rank extracts every world_size()-th image,
// the rows are gathered on every rank in file order, and rank 0 writes the same files as
// extract_features. Returns the whole set on every rank.
FeatureSet extract_features_sharded(model::Classifier& model,
                                    std::shared_ptr<const data::Dataset> dataset,
                                    const std::filesystem::path& out_dir,
                                    const ExtractOptions& options);

// Reads a folder written by extract_features. With `expected_model_sha256`, features from another
// model are an error (re-run the extraction).
FeatureSet load_features(const std::filesystem::path& dir,
                         const std::string& expected_model_sha256 = "");

// What features are computed from, as recorded in a manifest's "key": the model's SHA-256, the
// layer, the preprocessing, the class names and a hash of the ordered file list (each row's file,
// label, size and modification time). A cache is reused only when every part is equal.
Json feature_key(const std::string& model_sha256, const std::string& layer,
                 const data::Transform& transform, const data::Dataset& dataset,
                 const std::string& precision = "fp32");
// Why `cached` was not computed from `key` (the first part that differs), or "" when it was.
std::string stale_reason(const FeatureSet& cached, const Json& key);

// The SHA-256 that extract_features records for `model`.
std::string model_sha256(model::Classifier& model);

// "train" | "val" | "test" | "all" (the splits that exist, one after the other) | "auto" (test,
// else val, else train) of a source; `name` (optional) receives the split chosen.
std::shared_ptr<const data::Dataset> select_split(const data::Splits& splits,
                                                  const std::string& split,
                                                  std::string* name = nullptr);

}  // namespace tlkit::pipeline
