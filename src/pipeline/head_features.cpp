// Stage 1's feature caches: one folder per layer and split, one backbone pass for several layers.
#include "head_features.h"

#include <algorithm>
#include <optional>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/strings.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/train/distributed.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline::detail {
namespace {

// out/features/<split> for the classification head's input, out/features/<layer>/<split> for
// any other layer.
fs::path feature_dir(const model::Classifier& model, const RunConfig& config,
                     const FeatureRequest& request) {
  const auto root = config.out / "features";
  return request.layer == model.penultimate_layer() ? root / request.split
                                                    : root / request.layer / request.split;
}

Json request_key(model::Classifier& model, const FeatureRequest& request, const RunConfig& config) {
  return feature_key(request.model_sha256, request.layer, *eval_transform(model), *request.dataset,
                     config.fit.precision);
}

ExtractOptions extract_options(const RunConfig& config, const FeatureRequest& request) {
  ExtractOptions extract;
  extract.batch_size = static_cast<size_t>(std::max<std::int64_t>(config.data.batch_size, 64));
  extract.strict = config.data.strict;
  extract.workers = config.data.workers;
  extract.device = config.fit.device;
  extract.source = config.data.source;
  extract.split = request.split;
  extract.layer = request.layer;
  extract.model_sha256 = request.model_sha256;
  extract.precision = config.fit.precision;
  extract.channels_last = config.fit.channels_last;
  return extract;
}

}  // namespace

std::string model_hash(model::Classifier& model, const RunConfig& config) {
  return config.model_sha256.empty() ? model_sha256(model) : config.model_sha256;
}

FeatureSet cached_features(model::Classifier& model, const FeatureRequest& request,
                           const RunConfig& config, const ExtractedHere& extracted) {
  const auto dir = feature_dir(model, config, request);
  if (extracted.count(dir)) return load_features(dir, request.model_sha256);
  const auto key = request_key(model, request, config);
  auto* world = train::world();
  // Data parallel: rank 0 reads the cache and decides; the others follow its decision.
  std::optional<FeatureSet> reusable;
  if (train::is_main_process() && fs::exists(dir / "manifest.json")) {
    try {
      auto cached = load_features(dir);
      const auto reason = stale_reason(cached, key);
      if (reason.empty()) {
        logger()->info("stage 1: reusing cached {} features of {} ({} x {})", request.split,
                       request.layer, cached.features.size(0), cached.features.size(1));
        reusable = std::move(cached);
      } else {
        logger()->info("stage 1: cached {} features were {}; extracting again", request.split,
                       reason);
      }
    } catch (const Error& e) {
      logger()->info("stage 1: cached {} features not reusable ({}); extracting again",
                     request.split, e.what());
    }
  }
  if (world && train::broadcast_string(*world, reusable ? "reuse" : "extract") == "reuse")
    return reusable ? std::move(*reusable) : load_features(dir);
  if (reusable) return std::move(*reusable);
  const auto extract = extract_options(config, request);
  if (world) return extract_features_sharded(model, request.dataset, dir, extract);
  const auto result = extract_features(model, request.dataset, dir, extract);
  logger()->info("stage 1: extracted {} features of {} ({} x {}) in {:.1f}s", request.split,
                 request.layer, result.rows, result.dim, result.seconds);
  return load_features(dir, request.model_sha256);
}

std::vector<std::string> layers_to_extract(model::Classifier& model,
                                           const std::shared_ptr<const data::Dataset>& dataset,
                                           const std::string& split,
                                           const std::vector<std::string>& layers,
                                           const RunConfig& config) {
  std::vector<std::string> missing;
  const auto sha = model_hash(model, config);
  for (const auto& layer : layers) {
    const FeatureRequest request{dataset, split, layer, sha};
    const auto manifest = feature_dir(model, config, request) / "manifest.json";
    // The manifest alone tells (its key); the features are read when a head trains on them.
    FeatureSet cached;
    try {
      if (fs::exists(manifest)) cached.manifest = Json::parse(read_file(manifest));
    } catch (const Error&) {
    }
    if (!cached.manifest.is_object() ||
        !stale_reason(cached, request_key(model, request, config)).empty())
      missing.push_back(layer);
  }
  return missing;
}

void extract_layers(model::Classifier& model, const std::shared_ptr<const data::Dataset>& dataset,
                    const std::string& split, const std::vector<std::string>& layers,
                    const RunConfig& config, ExtractedHere& extracted) {
  if (layers.empty() || train::world()) return;
  const FeatureRequest request{dataset, split, layers.front(), model_hash(model, config)};
  std::vector<LayerFolder> folders;
  for (const auto& layer : layers) {
    auto for_layer = request;
    for_layer.layer = layer;
    folders.push_back({layer, feature_dir(model, config, for_layer)});
  }
  const auto results = extract_features(model, dataset, folders, extract_options(config, request));
  logger()->info("stage 1: extracted {} features of {} ({} images) in one pass, {:.1f}s", split,
                 join(layers), results.front().rows, results.front().seconds);
  for (const auto& folder : folders) extracted.insert(folder.dir);
}

}  // namespace tlkit::pipeline::detail
