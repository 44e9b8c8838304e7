#include <tlkit/core/interrupt.h>
#include <tlkit/pipeline/extract.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/script.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/npy.h>
#include <tlkit/core/run_folder.h>
#include <tlkit/data/loader.h>
#include <tlkit/data/transforms.h>
#include <tlkit/model/file_hash.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/network.h>
#include <tlkit/train/precision.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace {

constexpr const char* kFormat = "tlkit-features";
constexpr std::int64_t kVersion = 1;

// Several datasets one after the other (for --split all).
class ConcatDataset : public data::Dataset {
 public:
  explicit ConcatDataset(std::vector<std::shared_ptr<const data::Dataset>> parts)
      : parts_(std::move(parts)) {}
  size_t size() const override {
    size_t n = 0;
    for (const auto& p : parts_) n += p->size();
    return n;
  }
  data::Sample get(size_t index) const override {
    const auto [part, offset] = locate(index);
    return part->get(offset);
  }
  std::string source(size_t index) const override {
    const auto [part, offset] = locate(index);
    return part->source(offset);
  }
  const std::vector<std::string>& classes() const override { return parts_.front()->classes(); }
  std::vector<int64_t> labels() const override {
    std::vector<int64_t> all;
    for (const auto& p : parts_) {
      const auto l = p->labels();
      all.insert(all.end(), l.begin(), l.end());
    }
    return all;
  }
  std::string describe() const override {
    std::string text;
    for (const auto& p : parts_) text += (text.empty() ? "" : " + ") + p->describe();
    return text;
  }

 private:
  std::pair<const data::Dataset*, size_t> locate(size_t index) const {
    for (const auto& p : parts_) {
      if (index < p->size()) return {p.get(), index};
      index -= p->size();
    }
    fail("sample index out of range");
  }

  std::vector<std::shared_ptr<const data::Dataset>> parts_;
};

Json manifest_for(const model::Classifier& model, const data::Dataset& dataset,
                  const data::Transform& transform, const ExtractOptions& options,
                  const ExtractResult& result, const std::string& sha256) {
  const auto& md = model.metadata();
  Json m = Json::object();
  m["format"] = kFormat;
  m["version"] = kVersion;
  m["model"]["file"] = model.path().filename().string();
  m["model"]["sha256"] = sha256;
  m["model"]["architecture"] = md.architecture;
  m["model"]["weights"] = md.weights;
  m["layer"] = result.layer;
  m["rows"] = result.rows;
  m["feature_dim"] = result.dim;
  m["dtype"] = "float32";
  m["preprocessing"]["resize"] = md.resize;
  m["preprocessing"]["crop"] = md.crop;
  m["preprocessing"]["mean"] = md.mean;
  m["preprocessing"]["std"] = md.std;
  m["preprocessing"]["transform"] = transform.describe();
  m["class_names"] = dataset.classes();
  m["dataset"] = dataset.describe();
  m["source"] = options.source;
  m["split"] = options.split;
  m["key"] = feature_key(sha256, result.layer, transform, dataset, options.precision);
  m["files"]["features"] = "features.npy";
  m["files"]["labels"] = "labels.npy";
  m["seconds"] = result.seconds;
  return m;
}

}  // namespace

Json feature_key(const std::string& model_sha256, const std::string& layer,
                 const data::Transform& transform, const data::Dataset& dataset,
                 const std::string& precision) {
  // One line per row: its file, label, and for files on disk their size and modification time,
  // so renamed classes, another split, other images or edited files all change the key.
  std::string rows;
  const auto labels = dataset.labels();
  for (size_t i = 0; i < dataset.size(); ++i) {
    const auto source = dataset.source(i);
    rows += source + "\t" + std::to_string(labels[i]);
    const auto hash = source.rfind('#');
    const fs::path file = hash == std::string::npos ? source : source.substr(0, hash);
    std::error_code error;
    const auto size = fs::file_size(file, error);
    if (!error) {
      const auto time = fs::last_write_time(file, error).time_since_epoch().count();
      rows += "\t" + std::to_string(size) + "\t" + std::to_string(error ? 0 : time);
    }
    rows += "\n";
  }
  Json key = Json::object();
  key["model_sha256"] = model_sha256;
  key["layer"] = layer;
  key["preprocessing"] = transform.describe();
  // fp32 keys are those of earlier versions (their caches stay valid); other precisions give
  // other features.
  if (train::parse_precision(precision) != train::Precision::kFp32)
    key["precision"] = train::precision_name(train::parse_precision(precision));
  key["class_names"] = dataset.classes();
  key["rows"] = static_cast<std::int64_t>(dataset.size());
  key["files_sha256"] = model::sha256_hex(rows);
  return key;
}

std::string stale_reason(const FeatureSet& cached, const Json& key) {
  if (!cached.manifest.contains("key")) return "written by an older tlkit (no cache key)";
  const auto& old = cached.manifest.at("key");
  const std::vector<std::pair<std::string, std::string>> parts = {
      {"model_sha256", "another model file"},
      {"layer", "another layer"},
      {"preprocessing", "other preprocessing"},
      {"class_names", "other class names"},
      {"rows", "another number of images"},
      {"files_sha256", "other image files (another split or seed, or changed files)"}};
  for (const auto& [name, what] : parts) {
    if (!old.contains(name) || old.at(name).dump() != key.at(name).dump())
      return "computed from " + what;
  }
  // Absent in both for fp32.
  const auto precision = [](const Json& k) {
    return k.contains("precision") ? k.at("precision").as_string() : std::string("fp32");
  };
  if (precision(old) != precision(key))
    return "computed at another precision (" + precision(old) + ", now " + precision(key) + ")";
  return "";
}

std::string model_sha256(model::Classifier& model) {
  if (!model.path().empty() && fs::exists(model.path())) return model::sha256_file(model.path());
  std::ostringstream bytes;
  model.module().save(bytes);
  return model::sha256_hex(bytes.str());
}

std::shared_ptr<const data::Dataset> select_split(const data::Splits& splits,
                                                  const std::string& split, std::string* name) {
  if (split == "auto") {
    const auto* chosen = splits.test ? "test" : splits.val ? "val" : "train";
    return select_split(splits, chosen, name);
  }
  if (name) *name = split;
  const auto need = [&](const std::shared_ptr<data::Dataset>& d, const char* hint) {
    TLKIT_CHECK(d != nullptr, "the data source has no ", split, " split; ", hint);
    return std::shared_ptr<const data::Dataset>(d);
  };
  if (split == "train") return need(splits.train, "check the source");
  if (split == "val") return need(splits.val, "give --val-split 0.2 or a val/ folder");
  if (split == "test")
    return need(splits.test, "give a test/ folder (or a source with a test set)");
  TLKIT_CHECK(split == "all", "unknown split '", split, "'; use train, val, test or all");
  std::vector<std::shared_ptr<const data::Dataset>> parts;
  for (const auto& d : {splits.train, splits.val, splits.test}) {
    if (d) parts.push_back(d);
  }
  TLKIT_CHECK(!parts.empty(), "the data source has no images");
  return std::make_shared<ConcatDataset>(std::move(parts));
}

namespace {

// Model state that extraction changes (mode, device, memory format), restored on every exit path.
class ModelStateGuard {
 public:
  ModelStateGuard(model::Classifier& model, const ExtractOptions& options)
      : model_(model),
        training_(model.is_training()),
        device_(model.device()),
        channels_last_(options.channels_last) {
    model_.train(false);
    model_.to(options.device);
    if (channels_last_) {
      train::ScriptNetwork network(model_.module());
      train::set_channels_last(network, true);
    }
  }
  ~ModelStateGuard() {
    if (channels_last_) {
      train::ScriptNetwork network(model_.module());
      train::set_channels_last(network, false);
    }
    model_.to(device_);
    model_.train(training_);
  }

 private:
  model::Classifier& model_;
  bool training_;
  c10::Device device_;
  bool channels_last_;
};

// The flattened rows of `layers` for one batch (one pass), at the extraction's precision and
// memory format.
std::vector<at::Tensor> forward_rows(model::Classifier& model, const at::Tensor& images,
                                     const std::vector<std::string>& layers,
                                     const ExtractOptions& options) {
  auto x = images.to(options.device);
  if (options.channels_last && x.dim() == 4) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  train::AutocastGuard autocast(train::parse_precision(options.precision), options.device);
  auto outputs = model.forward_until(x, layers);
  for (auto& rows : outputs) rows = rows.to(at::kCPU, at::kFloat);
  return outputs;
}

at::Tensor forward_rows(model::Classifier& model, const at::Tensor& images,
                        const std::string& layer, const ExtractOptions& options) {
  return forward_rows(model, images, std::vector<std::string>{layer}, options).front();
}

// One layer's output file while the loader runs.
struct LayerWriter {
  std::string layer;
  fs::path dir;
  std::unique_ptr<NpyWriter> features;  // made at the first batch (the width is known then)
  std::unique_ptr<NpyWriter> labels;
};

// Runs the loader through the model once, up to the deepest layer, appending each layer's rows to
// its writer; returns the rows' sources.
std::vector<std::string> stream_rows(model::Classifier& model, data::DataLoader& loader,
                                     const ExtractOptions& options,
                                     std::vector<LayerWriter>& writers) {
  ModelStateGuard guard(model, options);
  at::NoGradGuard no_grad;
  std::vector<std::string> layers;
  for (const auto& w : writers) layers.push_back(w.layer);
  std::vector<std::string> sources;
  for (auto& batch : loader) {
    throw_if_interrupted("extracting features (no partial feature file is kept)");
    const auto rows = forward_rows(model, batch.images, layers, options);
    for (size_t i = 0; i < writers.size(); ++i) {
      auto& w = writers[i];
      if (!w.features) {
        w.features = std::make_unique<NpyWriter>(w.dir / "features.npy", at::kFloat,
                                                 std::vector<std::int64_t>{rows[i].size(1)});
      }
      w.features->append(rows[i]);
      w.labels->append(batch.labels.to(at::kLong));
    }
    sources.insert(sources.end(), batch.sources.begin(), batch.sources.end());
    logger()->debug("extracted {}/{} rows", sources.size(), loader.num_samples());
  }
  TLKIT_CHECK(writers.front().features != nullptr,
              "no images to extract features from; check --data and --limit");
  return sources;
}

// What both extractions check and set up before any work: the layer (a clear error for an
// unknown one), the model's hash, its eval transform and an unshuffled loader.
struct Extraction {
  ExtractResult result;
  std::string sha256;
  std::shared_ptr<data::Transform> transform;
  data::LoaderOptions loader;
};

Extraction prepare_extraction(model::Classifier& model, const data::Dataset& dataset,
                              const fs::path& out_dir, const ExtractOptions& options) {
  TLKIT_CHECK(dataset.size() > 0, "no images to extract features from; check --data");
  TLKIT_CHECK(options.batch_size > 0, "the batch size must be positive");
  Extraction e{
      {out_dir, 0, 0, options.layer.empty() ? model.penultimate_layer() : options.layer, 0},
      options.model_sha256.empty() ? std::string() : options.model_sha256,
      nullptr,
      {}};
  model.layer_index(e.result.layer);
  if (e.sha256.empty()) e.sha256 = model_sha256(model);
  e.transform = eval_transform(model);
  e.loader.batch_size = options.batch_size;
  e.loader.shuffle = false;
  e.loader.workers = options.workers;
  e.loader.limit = options.limit;
  e.loader.skip_unreadable = !options.strict;
  return e;
}

}  // namespace

ExtractResult extract_features(model::Classifier& model,
                               std::shared_ptr<const data::Dataset> dataset,
                               const fs::path& out_dir, const ExtractOptions& options) {
  TLKIT_CHECK(dataset != nullptr, "no images to extract features from; check --data");
  const auto layer = options.layer.empty() ? model.penultimate_layer() : options.layer;
  return extract_features(model, std::move(dataset), {{layer, out_dir}}, options).front();
}

std::vector<ExtractResult> extract_features(model::Classifier& model,
                                            std::shared_ptr<const data::Dataset> dataset,
                                            const std::vector<LayerFolder>& folders,
                                            const ExtractOptions& options) {
  TLKIT_CHECK(dataset != nullptr, "no images to extract features from; check --data");
  TLKIT_CHECK(!folders.empty(), "no layer to extract features of");
  std::vector<ExtractResult> results;
  std::vector<LayerWriter> writers;
  Extraction setup;
  auto layer_options = options;
  for (const auto& folder : folders) {
    layer_options.layer = folder.layer;
    setup = prepare_extraction(model, *dataset, folder.dir, layer_options);
    layer_options.model_sha256 = setup.sha256;  // the model file is hashed once
    results.push_back(setup.result);
    writers.push_back({setup.result.layer, folder.dir, nullptr,
                       std::make_unique<NpyWriter>(folder.dir / "labels.npy", at::kLong,
                                                   std::vector<std::int64_t>{})});
  }
  data::DataLoader loader(dataset, setup.transform, setup.loader);

  const auto start = std::chrono::steady_clock::now();
  const auto sources = stream_rows(model, loader, options, writers);
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t i = 0; i < writers.size(); ++i) {
    auto& result = results[i];
    auto& writer = writers[i];
    result.rows = writer.features->rows();
    result.dim = writer.features->row_shape().at(0);
    result.seconds = seconds;
    Json manifest = manifest_for(model, *dataset, *setup.transform, options, result, setup.sha256);
    manifest["sources"] = sources;
    // The old set stops being complete before the new files land; the manifest comes last.
    remove_own_file(writer.dir / "manifest.json");
    writer.features->commit();
    writer.labels->commit();
    write_file_atomic(writer.dir / "manifest.json", manifest.dump(2) + "\n");
    logger()->info("extracted {} x {} features (layer {}) in {:.1f} s ({:.0f} images/s) to {}",
                   result.rows, result.dim, result.layer, result.seconds,
                   result.rows / std::max(result.seconds, 1e-9), writer.dir.string());
  }
  if (writers.size() > 1)
    logger()->debug("extracted {} layers in one pass over {} images in {:.1f} s", writers.size(),
                    results.front().rows, seconds);
  return results;
}

FeatureSet extract_features_sharded(model::Classifier& model,
                                    std::shared_ptr<const data::Dataset> dataset,
                                    const fs::path& out_dir, const ExtractOptions& options) {
  auto* world = train::world();
  TLKIT_CHECK(world != nullptr,
              "extract_features_sharded needs a process group (train::set_world)");
  TLKIT_CHECK(dataset != nullptr, "no images to extract features from; check --data");
  auto [result, sha256, transform, loader_options] =
      prepare_extraction(model, *dataset, out_dir, options);
  loader_options.shards = static_cast<size_t>(world->world_size());
  loader_options.shard = static_cast<size_t>(world->rank());
  loader_options.pad_shards = false;
  data::DataLoader loader(dataset, transform, loader_options);
  const auto total = static_cast<std::int64_t>(
      options.limit > 0 ? std::min(dataset->size(), options.limit) : dataset->size());

  const auto start = std::chrono::steady_clock::now();
  std::vector<at::Tensor> rows, labels;
  std::vector<std::int64_t> indices;  // dataset index of each local row (unreadable files left out)
  {
    ModelStateGuard guard(model, options);
    at::NoGradGuard no_grad;
    for (auto& batch : loader) {
      throw_if_interrupted("extracting features (no partial feature file is kept)");
      rows.push_back(forward_rows(model, batch.images, result.layer, options));
      labels.push_back(batch.labels.to(at::kLong).clone());
      indices.insert(indices.end(), batch.indices.begin(), batch.indices.end());
    }
  }
  // The feature width also on a rank whose shard is empty (fewer images than processes).
  const auto width = train::allreduce_sum(
      *world,
      {rows.empty() ? 0.0 : static_cast<double>(rows.front().size(1)), rows.empty() ? 0.0 : 1.0});
  const auto dim = static_cast<std::int64_t>(width[0] / std::max(width[1], 1.0));
  auto local_rows = rows.empty() ? at::zeros({0, dim}) : at::cat(rows);
  auto local_labels = labels.empty() ? at::zeros({0}, at::kLong) : at::cat(labels);
  // Every rank's rows with their dataset indices (-1 pads a rank's share); rows of files that
  // could not be read are absent, so the whole is put together by index, not by position.
  const auto ranks = static_cast<std::int64_t>(world->world_size());
  const auto share = (total + ranks - 1) / ranks;
  auto local_indices = at::full({share}, -1, at::kLong);
  if (!indices.empty())
    local_indices.slice(0, 0, static_cast<std::int64_t>(indices.size()))
        .copy_(at::tensor(indices, at::kLong));
  const auto all_indices = train::gather_sharded_rows(*world, local_indices, share * ranks);
  const auto all_rows = train::gather_sharded_rows(*world, local_rows, share * ranks);
  const auto all_labels = train::gather_sharded_rows(*world, local_labels, share * ranks);
  const auto kept = all_indices.ge(0).nonzero().flatten();
  const auto by_index = all_indices.index_select(0, kept).argsort();
  const auto order = kept.index_select(0, by_index);
  FeatureSet set;
  set.features = all_rows.index_select(0, order).contiguous();
  set.labels = all_labels.index_select(0, order).contiguous();
  result.rows = set.features.size(0);
  TLKIT_CHECK(result.rows > 0, "no image of ", dataset->describe(), " could be read");
  result.dim = set.features.size(1);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto sorted_indices = all_indices.index_select(0, order);
  for (std::int64_t i = 0; i < result.rows; ++i)
    set.sources.push_back(
        dataset->source(static_cast<size_t>(sorted_indices[i].item<std::int64_t>())));
  set.manifest = manifest_for(model, *dataset, *transform, options, result, sha256);
  set.manifest["sources"] = set.sources;
  set.layer = result.layer;
  set.model_sha256 = sha256;
  set.class_names = dataset->classes();
  if (train::is_main_process()) {
    fs::create_directories(out_dir);
    remove_own_file(out_dir / "manifest.json");
    write_npy(out_dir / "features.npy", set.features);
    write_npy(out_dir / "labels.npy", set.labels);
    write_file_atomic(out_dir / "manifest.json", set.manifest.dump(2) + "\n");
    logger()->info(
        "extracted {} x {} features (layer {}) on {} processes in {:.1f} s ({:.0f} "
        "images/s) to {}",
        result.rows, result.dim, result.layer, world->world_size(), result.seconds,
        result.rows / std::max(result.seconds, 1e-9), out_dir.string());
  }
  world->barrier();
  return set;
}

FeatureSet load_features(const fs::path& dir, const std::string& expected_model_sha256) {
  const auto manifest_path = dir / "manifest.json";
  TLKIT_CHECK(
      fs::exists(manifest_path), "no manifest.json in '", dir.string(),
      "': not a complete feature extraction; run 'tlkit extract --model M.pt --data SRC --out ",
      dir.string(), "'");
  FeatureSet set;
  set.manifest = Json::parse(read_file(manifest_path));
  const Json& m = set.manifest;
  TLKIT_CHECK(m.contains("format") && m.at("format").as_string() == kFormat, "'",
              manifest_path.string(), "' is not a tlkit feature manifest");
  TLKIT_CHECK(m.at("version").as_int() == kVersion, "'", manifest_path.string(),
              "' has format version ", m.at("version").as_int(), "; this tlkit reads version ",
              kVersion, "; re-run tlkit extract");
  set.layer = m.at("layer").as_string();
  set.model_sha256 = m.at("model").at("sha256").as_string();
  set.class_names = m.at("class_names").as_string_list();
  set.sources = m.at("sources").as_string_list();
  TLKIT_CHECK(expected_model_sha256.empty() || expected_model_sha256 == set.model_sha256,
              "the features in '", dir.string(), "' were extracted with another model (sha256 ",
              set.model_sha256.substr(0, 12), "..., this one is ",
              expected_model_sha256.substr(0, 12), "...); re-run tlkit extract");
  set.features = read_npy(dir / m.at("files").at("features").as_string());
  set.labels = read_npy(dir / m.at("files").at("labels").as_string());
  const auto rows = m.at("rows").as_int();
  const auto dim = m.at("feature_dim").as_int();
  TLKIT_CHECK(set.features.scalar_type() == at::kFloat && set.features.dim() == 2 &&
                  set.features.size(0) == rows && set.features.size(1) == dim &&
                  set.labels.scalar_type() == at::kLong && set.labels.dim() == 1 &&
                  set.labels.size(0) == rows &&
                  static_cast<std::int64_t>(set.sources.size()) == rows,
              "the files in '", dir.string(), "' do not match their manifest (", rows, " x ", dim,
              " float32 features and int64 labels expected); re-run tlkit extract");
  const auto classes = static_cast<std::int64_t>(set.class_names.size());
  TLKIT_CHECK(rows == 0 || (set.labels.min().item<std::int64_t>() >= 0 &&
                            set.labels.max().item<std::int64_t>() < classes),
              "'", (dir / m.at("files").at("labels").as_string()).string(),
              "' holds labels outside the manifest's ", classes,
              " classes; the file is damaged: re-run tlkit extract");
  return set;
}

}  // namespace tlkit::pipeline
