// The builders of a run: data, preprocessing, model, loaders, optimizer, schedule (see build.h).
#include <tlkit/pipeline/build.h>

#include <cmath>
#include <mutex>
#include <sstream>

#include <torch/optim/sgd.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/loader.h>
#include <tlkit/data/sampler.h>
#include <tlkit/optim/adam.h>
#include <tlkit/optim/adamw.h>
#include <tlkit/optim/factory.h>
#include <tlkit/optim/rmsprop.h>
#include <tlkit/optim/settings.h>
#include <tlkit/optim/sgd.h>
#include <tlkit/schedule/lr_scheduler.h>
#include <tlkit/schedule/momentum.h>
#include <tlkit/schedule/spec.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/loader_source.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace {

std::array<double, 3> three(const std::vector<double>& values) {
  return {values.at(0), values.at(std::min<size_t>(1, values.size() - 1)),
          values.at(std::min<size_t>(2, values.size() - 1))};
}

std::string format_triple(const std::array<double, 3>& v) {
  std::ostringstream out;
  out << v[0] << "," << v[1] << "," << v[2];
  return out.str();
}

// Momentum-cycling schedules (OneCycle) read tlkit's own options through these fast accessors
// instead of the generic serialize() round trip.
void register_tlkit_momentum_options() {
  static std::once_flag once;
  std::call_once(once, [] {
    schedule::register_momentum_option<optim::SGDOptions>("tlkit::optim::SGDOptions");
    schedule::register_momentum_option<optim::RMSPropOptions>("tlkit::optim::RMSPropOptions");
    schedule::register_beta1_option<optim::AdamOptions>("tlkit::optim::AdamOptions");
    schedule::register_beta1_option<optim::AdamWOptions>("tlkit::optim::AdamWOptions");
  });
}

}  // namespace

// ------------------------------------------------------------------ data
PreparedData open_data(const DataOptions& options) {
  TLKIT_CHECK(!options.source.empty(),
              "no data source given; pass --data DIR (or cifar10:DIR, fashion-mnist:DIR)");
  data::SourceOptions source_options;
  source_options.val_split = options.val_split;
  source_options.seed = options.seed;
  source_options.strict = options.strict;
  source_options.limit = options.limit;
  PreparedData prepared;
  prepared.splits = data::open_source(options.source, source_options);
  prepared.train = prepared.splits.train;
  prepared.val = prepared.splits.val;
  TLKIT_CHECK(prepared.train && prepared.train->size() > 0, "the data source '", options.source,
              "' has no training images");
  TLKIT_CHECK(prepared.train->classes().size() >= 2, "the data source '", options.source, "' has ",
              prepared.train->classes().size(),
              " class; a classifier needs at least 2 class folders");
  if (prepared.val && prepared.val->size() == 0) prepared.val = nullptr;
  prepared.eval = prepared.splits.test ? prepared.splits.test : prepared.val;
  prepared.eval_split = prepared.splits.test ? "test" : prepared.val ? "val" : "";
  prepared.classes = prepared.train->classes();
  data::warn_if_imbalanced(*prepared.train, "training split");
  logger()->info("data: {} | {} | {}", prepared.train->describe(),
                 prepared.val ? "val " + std::to_string(prepared.val->size()) + " images"
                              : std::string("no val split"),
                 prepared.splits.test
                     ? "test " + std::to_string(prepared.splits.test->size()) + " images"
                     : std::string("no test split"));
  return prepared;
}

// ------------------------------------------------------------------ preprocessing
std::string Preprocessing::describe() const {
  std::ostringstream out;
  out << "resize " << resize << " (" << resize_from << ") -> centre crop " << input_size << " ("
      << input_size_from << "), mean " << format_triple(mean) << " (" << mean_from << "), std "
      << format_triple(std) << " (" << std_from << ")";
  return out.str();
}

void check_preprocess(const PreprocessOptions& options) {
  TLKIT_CHECK(options.input_size >= 0 && options.input_size <= 4096,
              "--input-size must be in [1, 4096], got ", options.input_size);
  TLKIT_CHECK(options.resize >= 0 && options.resize <= 8192, "--resize must be in [1, 8192], got ",
              options.resize);
  TLKIT_CHECK(
      options.resize == 0 || options.input_size == 0 || options.resize >= options.input_size,
      "--resize (", options.resize, ") must be at least --input-size (", options.input_size,
      "): the centre crop is taken from the resized image");
  for (const auto* values : {&options.mean, &options.std}) {
    const char* name = values == &options.mean ? "--mean" : "--std";
    TLKIT_CHECK(values->empty() || values->size() == 1 || values->size() == 3, name,
                " takes 1 value or 3 (one per RGB channel), got ", values->size());
    for (double v : *values) TLKIT_CHECK(std::isfinite(v), name, " values must be finite numbers");
  }
  for (double s : options.std) TLKIT_CHECK(s > 0, "--std values must be positive, got ", s);
}

Preprocessing resolve_preprocessing(const model::ModelMetadata& md,
                                    const PreprocessOptions& options) {
  check_preprocess(options);
  Preprocessing p;
  const std::string model_or_default = md.present ? "model" : "default";
  p.input_size = md.crop;
  p.resize = md.resize;
  p.mean = three(md.mean);
  p.std = three(md.std);
  p.input_size_from = p.resize_from = p.mean_from = p.std_from = model_or_default;
  if (options.input_size > 0) {
    p.input_size = options.input_size;
    p.input_size_from = "flag";
    if (options.resize == 0) {
      const double ratio =
          md.present && md.crop > 0 ? static_cast<double>(md.resize) / md.crop : 1.0;
      p.resize = std::max<std::int64_t>(p.input_size, std::llround(p.input_size * ratio));
      p.resize_from = "from --input-size";
    }
  }
  if (options.resize > 0) {
    p.resize = options.resize;
    p.resize_from = "flag";
  }
  TLKIT_CHECK(p.resize >= p.input_size, "the resize (", p.resize, ", ", p.resize_from,
              ") is smaller than the input size (", p.input_size, ", ", p.input_size_from,
              "); give --resize");
  if (!options.mean.empty()) {
    p.mean = three(options.mean);
    p.mean_from = "flag";
  }
  if (!options.std.empty()) {
    p.std = three(options.std);
    p.std_from = "flag";
  }
  return p;
}

model::Classifier load_model(const fs::path& path, const PreprocessOptions& preprocess,
                             c10::Device device, Preprocessing* resolved) {
  check_preprocess(preprocess);
  model::LoadOptions load;
  load.device = device;
  load.input_size = preprocess.input_size;
  auto model = model::Classifier::load(path, load);
  const auto channels = model.input_channels();
  TLKIT_CHECK(channels == 1 || channels == 3, "'", path.string(), "' takes images with ", channels,
              " channels (its first convolution's input); tlkit feeds grey (1) or RGB (3) "
              "images: export the model with 1 or 3 input channels");
  if (channels == 1)
    logger()->info(
        "'{}' takes grey images: RGB images are converted to luma as PIL's "
        "convert('L') does",
        path.string());
  const auto p = resolve_preprocessing(model.metadata(), preprocess);
  if (!model.metadata().present && !preprocess.any()) {
    logger()->warn(
        "'{}' carries no tlkit metadata: assuming {}; if the model expects other inputs, give "
        "--input-size N --resize N --mean a,b,c --std a,b,c",
        path.string(), p.describe());
  }
  model.set_preprocessing(p.resize, p.input_size, {p.mean.begin(), p.mean.end()},
                          {p.std.begin(), p.std.end()});
  logger()->info("preprocessing: {}", p.describe());
  if (resolved) *resolved = p;
  return model;
}

data::Normalization normalization(const model::ModelMetadata& md) {
  TLKIT_CHECK((md.mean.size() == 1 || md.mean.size() == 3) && md.mean.size() == md.std.size(),
              "the model's preprocessing has ", md.mean.size(), " means and ", md.std.size(),
              " stds; give 1 or 3 of each (--mean a,b,c --std a,b,c)");
  const auto mean = three(md.mean), std = three(md.std);
  data::Normalization n;
  for (size_t c = 0; c < 3; ++c) {
    n.mean[c] = static_cast<float>(mean[c]);
    n.std[c] = static_cast<float>(std[c]);
  }
  return n;
}

data::Channels input_channels(const model::Classifier& model) {
  return model.input_channels() == 1 ? data::Channels::kGrey : data::Channels::kRgb;
}

std::shared_ptr<data::Transform> eval_transform(const model::Classifier& model) {
  const auto& md = model.metadata();
  return data::eval_transform(static_cast<int>(md.resize), static_cast<int>(md.crop),
                              normalization(md), input_channels(model));
}

std::shared_ptr<data::Transform> train_transform(const model::Classifier& model,
                                                 const DataOptions& options) {
  if (!options.augment) return eval_transform(model);
  data::Augmentation augmentation;
  augmentation.scale = {options.min_crop_scale, 1.0};
  augmentation.flip = options.flip;
  augmentation.auto_augment = options.augment_policy;
  augmentation.erasing = options.random_erasing;
  augmentation.erasing_random = options.erasing_value == "random";
  return data::train_transform(static_cast<int>(model.metadata().crop),
                               normalization(model.metadata()), augmentation,
                               input_channels(model));
}

void warn_if_upscaled(const data::Dataset& dataset, const model::Classifier& model) {
  if (dataset.size() == 0) return;
  const auto image = dataset.get(0).image;
  const auto shorter = std::min(image.size(0), image.size(1));
  const auto resize = model.metadata().resize;
  if (shorter * 3 <= resize) {
    logger()->warn(
        "the images are {}x{} but are resized to {} for a {}x{} network input; if the model was "
        "trained on small images, give --input-size (e.g. --input-size {})",
        image.size(1), image.size(0), resize, model.metadata().crop, model.metadata().crop,
        shorter);
  }
}

// ------------------------------------------------------------------ loaders
std::shared_ptr<train::BatchSource> make_loader(std::shared_ptr<const data::Dataset> dataset,
                                                std::shared_ptr<data::Transform> transform,
                                                const DataOptions& options, bool shuffle) {
  data::LoaderOptions loader;
  loader.batch_size = static_cast<size_t>(options.batch_size);
  loader.shuffle = shuffle;
  loader.balanced = shuffle && options.sampler == "balanced";
  loader.seed = options.seed;
  loader.workers = options.workers;
  loader.skip_unreadable = !options.strict;
  if (train::world_size() > 1) {
    // Data parallel: --batch-size is the whole step's batch, split between the ranks, so the
    // number of processes changes the speed, not the result. Training shards pad (every rank
    // the same number of batches); evaluation shards do not (every image counted once).
    const auto ranks = static_cast<size_t>(train::world_size());
    TLKIT_CHECK(loader.batch_size % ranks == 0, "the batch size ", loader.batch_size,
                " does not split evenly over ", ranks,
                " processes: give --batch-size a multiple of ", ranks);
    loader.batch_size /= ranks;
    loader.shards = ranks;
    loader.shard = static_cast<size_t>(train::world_rank());
    loader.pad_shards = shuffle;
  }
  return std::make_shared<train::LoaderSource>(
      std::make_shared<data::DataLoader>(std::move(dataset), std::move(transform), loader));
}

Sources make_sources(const PreparedData& data, const model::Classifier& model,
                     const DataOptions& options) {
  Sources sources;
  sources.train = make_loader(data.train, train_transform(model, options), options, true);
  if (data.val) sources.val = make_loader(data.val, eval_transform(model), options, false);
  if (data.eval)
    sources.eval = data.eval == data.val
                       ? sources.val
                       : make_loader(data.eval, eval_transform(model), options, false);
  return sources;
}

// ------------------------------------------------------------------ optimizer, schedule, trainer
double base_lr(const std::string& optimizer_spec) {
  return optim::resolved_lr(optim::parse_optimizer_settings(optimizer_spec));
}

std::string baseline_optimizer_for(const std::string& stage2_spec) {
  auto spec = optim::parse_optimizer_settings(stage2_spec);
  const auto lr = optim::default_lr(spec.name);
  spec.settings.lr = lr ? *lr : 10 * optim::resolved_lr(spec);
  return optim::format_optimizer_settings(spec);
}

std::unique_ptr<torch::optim::Optimizer> build_optimizer(
    const std::string& spec, const std::vector<model::ParamGroupSpec>& groups, bool decay_all) {
  TLKIT_CHECK(!groups.empty(), "nothing to train: every parameter is frozen; unfreeze some layers");
  auto parsed = optim::parse_optimizer_settings(spec);
  parsed.settings.lr = optim::resolved_lr(parsed);
  // Each group carries its own lr; make_optimizer keeps it and adds the spec's other settings.
  const torch::optim::SGDOptions prototype(*parsed.settings.lr);
  auto optimizer = optim::make_optimizer(parsed, model::to_optimizer_groups(groups, prototype));
  if (decay_all || optim::weight_decay_of(optimizer->param_groups().front().options()) == 0)
    return optimizer;
  // Biases and normalisation weights apart: the groups split, those without weight decay.
  std::vector<model::ParamGroupSpec> split;
  std::vector<bool> no_decay;
  for (const auto& group : groups) {
    model::ParamGroupSpec decayed{group.name, group.lr, {}, {}},
        plain{group.name + " (no weight decay)", group.lr, {}, {}};
    for (size_t i = 0; i < group.params.size(); ++i) {
      auto& part = group.params[i].dim() <= 1 ? plain : decayed;
      part.params.push_back(group.params[i]);
      if (i < group.param_names.size()) part.param_names.push_back(group.param_names[i]);
    }
    for (auto* part : {&decayed, &plain}) {
      if (part->params.empty()) continue;
      no_decay.push_back(part == &plain);
      split.push_back(std::move(*part));
    }
  }
  optimizer = optim::make_optimizer(parsed, model::to_optimizer_groups(split, prototype));
  auto& built = optimizer->param_groups();
  for (size_t g = 0; g < built.size(); ++g)
    if (no_decay[g]) optim::set_weight_decay(built[g].options(), 0);
  return optimizer;
}

std::shared_ptr<schedule::LRScheduler> build_scheduler(const std::string& spec,
                                                       torch::optim::Optimizer& optimizer,
                                                       std::int64_t epochs,
                                                       std::int64_t steps_per_epoch) {
  register_tlkit_momentum_options();
  schedule::ScheduleContext context;
  context.steps_per_epoch = steps_per_epoch;
  context.total_steps = epochs * steps_per_epoch;
  return schedule::make_scheduler(spec, optimizer, context);
}

train::TrainerOptions trainer_options(const FitOptions& fit, std::int64_t num_classes,
                                      const std::string& label) {
  train::TrainerOptions options;
  options.epochs = fit.epochs;
  options.num_classes = num_classes;
  options.device = fit.device;
  options.schedule_step =
      fit.schedule_per_batch ? train::ScheduleStep::kPerBatch : train::ScheduleStep::kPerEpoch;
  options.monitor = fit.monitor;
  options.min_delta = fit.min_delta;
  options.val_every = fit.val_every;
  options.grad_clip_norm = fit.grad_clip;
  options.grad_clip_mode = train::parse_grad_clip_mode(fit.grad_clip_mode);
  options.accumulate = fit.accumulate;
  options.loss.label_smoothing = fit.label_smoothing;
  options.loss.class_weights = train::parse_class_weights(fit.class_weights, num_classes);
  options.mix = mix_options(fit, 0);  // the caller sets mix.seed
  options.scale_loss = train::parse_precision(fit.precision) == train::Precision::kFp16;
  options.label = label;
  options.progress = fit.progress;
  return options;
}

}  // namespace tlkit::pipeline
