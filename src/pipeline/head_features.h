#pragma once
// The cached features stage 1 trains heads on (internal to the pipeline layer): one folder per
// layer and split under RUN/features, reused only when its key matches, and one backbone pass
// that extracts every layer the planned heads need.

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <tlkit/data/dataset.h>
#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/config.h>
#include <tlkit/pipeline/extract.h>

namespace tlkit::pipeline::detail {

// The model file's hash as the run computed it once (start_run), else hashed here.
std::string model_hash(model::Classifier& model, const RunConfig& config);

// What the features of one split are computed from.
struct FeatureRequest {
  std::shared_ptr<const data::Dataset> dataset;
  std::string split;
  std::string layer;
  std::string model_sha256;
};

// Folders this run extracted already (a pass for several layers): read back without the
// reuse check.
using ExtractedHere = std::set<std::filesystem::path>;

// The features of one split, reused only when the manifest's key (model, layer, preprocessing,
// ordered file list) equals this request's; extracted otherwise, with the reason logged.
FeatureSet cached_features(model::Classifier& model, const FeatureRequest& request,
                           const RunConfig& config, const ExtractedHere& extracted = {});

// The layers of `layers` whose features of `split` are not cached yet (or are stale).
std::vector<std::string> layers_to_extract(model::Classifier& model,
                                           const std::shared_ptr<const data::Dataset>& dataset,
                                           const std::string& split,
                                           const std::vector<std::string>& layers,
                                           const RunConfig& config);

// One pass over `dataset` caching the features of every layer of `layers` (those of
// layers_to_extract); the folders written are added to `extracted`. Data parallel runs extract
// layer by layer in cached_features instead (sharded extraction takes one layer).
void extract_layers(model::Classifier& model, const std::shared_ptr<const data::Dataset>& dataset,
                    const std::string& split, const std::vector<std::string>& layers,
                    const RunConfig& config, ExtractedHere& extracted);

}  // namespace tlkit::pipeline::detail
