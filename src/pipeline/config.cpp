// RunConfig: defaults per command, one validation, and the JSON record of a run (config.json).
#include <tlkit/pipeline/config.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>
#include <tlkit/data/auto_augment.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/loss.h>
#include <tlkit/train/mix.h>
#include <tlkit/train/precision.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace {

// Why `path` cannot be used ("no such file", "Permission denied"), or "" when it exists.
std::string missing_reason(const fs::path& path) {
  std::error_code error;
  if (fs::exists(path, error)) return "";
  return error ? error.message() : "no such file";
}

constexpr const char* kFormat = "tlkit-run-config";
constexpr std::int64_t kVersion = 1;

// One value of the config: its dotted key, how it is written and read.
struct Field {
  std::string key;
  std::function<Json()> get;
  std::function<void(const Json&)> set;
};

template <typename T>
Field field(const std::string& key, T& value) {
  Field f{key, nullptr, nullptr};
  if constexpr (std::is_same_v<T, bool>) {
    f.get = [&value] { return Json(value); };
    f.set = [&value](const Json& j) { value = j.as_bool(); };
  } else if constexpr (std::is_same_v<T, double>) {
    f.get = [&value] { return Json(value); };
    f.set = [&value](const Json& j) { value = j.as_double(); };
  } else if constexpr (std::is_integral_v<T>) {
    f.get = [&value] { return Json(static_cast<std::int64_t>(value)); };
    f.set = [&value, key](const Json& j) {
      const auto v = j.as_int();
      TLKIT_CHECK(std::is_signed_v<T> || v >= 0, "must be >= 0, got ", v);
      value = static_cast<T>(v);
    };
  } else if constexpr (std::is_same_v<T, std::string>) {
    f.get = [&value] { return Json(value); };
    f.set = [&value](const Json& j) { value = j.as_string(); };
  } else if constexpr (std::is_same_v<T, fs::path>) {
    f.get = [&value] { return Json(value.string()); };
    f.set = [&value](const Json& j) { value = j.as_string(); };
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    f.get = [&value] { return Json(value); };
    f.set = [&value](const Json& j) { value = j.as_double_list(); };
  } else if constexpr (std::is_same_v<T, c10::Device>) {
    f.get = [&value] { return Json(value.str()); };
    f.set = [&value](const Json& j) {
      try {
        value = c10::Device(j.as_string());
      } catch (const c10::Error&) {
        fail("must be cpu or cuda[:N], got '", j.as_string(), "'");
      }
    };
  }
  return f;
}

std::vector<Field> fields(RunConfig& c) {
  auto& d = c.data;
  auto& p = c.data.preprocess;
  auto& f = c.fit;
  auto& h = c.head;
  return {field("command", c.command),
          field("model", c.model),
          field("model_sha256", c.model_sha256),
          field("out", c.out),
          field("data.source", d.source),
          field("data.val_split", d.val_split),
          field("data.seed", d.seed),
          field("data.limit", d.limit),
          field("data.workers", d.workers),
          field("data.batch_size", d.batch_size),
          field("data.augment", d.augment),
          field("data.min_crop_scale", d.min_crop_scale),
          field("data.flip", d.flip),
          field("data.augment_policy", d.augment_policy),
          field("data.random_erasing", d.random_erasing),
          field("data.erasing_value", d.erasing_value),
          field("data.strict", d.strict),
          field("data.sampler", d.sampler),
          field("data.preprocess.input_size", p.input_size),
          field("data.preprocess.resize", p.resize),
          field("data.preprocess.mean", p.mean),
          field("data.preprocess.std", p.std),
          field("fit.epochs", f.epochs),
          field("fit.optimizer", f.optimizer),
          field("fit.schedule", f.schedule),
          field("fit.schedule_per_batch", f.schedule_per_batch),
          field("fit.monitor", f.monitor),
          field("fit.patience", f.patience),
          field("fit.min_delta", f.min_delta),
          field("fit.val_every", f.val_every),
          field("fit.ema_decay", f.ema_decay),
          field("fit.snapshots", f.snapshots),
          field("fit.overfit_batches", f.overfit_batches),
          field("fit.grad_clip", f.grad_clip),
          field("fit.grad_clip_mode", f.grad_clip_mode),
          field("fit.label_smoothing", f.label_smoothing),
          field("fit.class_weights", f.class_weights),
          field("fit.accumulate", f.accumulate),
          field("fit.decay_all", f.decay_all),
          field("fit.mixup", f.mixup),
          field("fit.cutmix", f.cutmix),
          field("fit.mix_prob", f.mix_prob),
          field("fit.mix_switch_prob", f.mix_switch_prob),
          field("fit.mix_off_epoch", f.mix_off_epoch),
          field("fit.on_nonfinite", f.on_nonfinite),
          field("fit.device", f.device),
          field("fit.precision", f.precision),
          field("fit.channels_last", f.channels_last),
          field("fit.batch_norm", f.batch_norm),
          field("fit.progress", f.progress),
          field("head.from", h.from),
          field("head.steps", h.steps),
          field("head.epochs", h.epochs),
          field("head.solver", h.solver),
          field("head.optimizer", h.optimizer),
          field("head.schedule", h.schedule),
          field("head.batch_size", h.batch_size),
          field("head.patience", h.patience),
          field("unfreeze_from", c.unfreeze_from),
          field("lr_rules", c.lr_rules),
          field("lr_decay", c.lr_decay),
          field("lr_floor", c.lr_floor),
          field("reinitialize", c.reinitialize),
          field("baseline", c.baseline),
          field("baseline_optimizer", c.baseline_optimizer),
          field("cv_folds", c.cv_folds),
          field("cv_augment", c.cv_augment),
          field("calibrate", c.calibrate),
          field("resume", c.resume)};
}

// Builds a spec on a stand-in parameter: a bad optimizer or schedule fails here, before any work.
void check_specs(const std::string& optimizer, const std::string& schedule, std::int64_t epochs,
                 const std::string& what) {
  try {
    auto stand_in = torch::zeros({1}).requires_grad_();
    auto built = build_optimizer(
        optimizer, {model::ParamGroupSpec{"all", base_lr(optimizer), {"x"}, {stand_in}}});
    build_scheduler(schedule, *built, epochs, 1);
  } catch (const Error& e) {
    fail(what, ": ", e.what());
  }
}

}  // namespace

RunConfig RunConfig::defaults(const std::string& command) {
  TLKIT_CHECK(command == "train" || command == "finetune", "unknown run command '", command,
              "'; use train or finetune");
  RunConfig config;
  config.command = command;
  if (command == "train") {
    config.data.batch_size = 64;
    config.fit.epochs = 10;
    config.fit.schedule = "cosine";
  } else {
    // Small-data defaults that match or beat the usual Python two-stage recipe: a converged head,
    // then every layer fine-tuned with Adam at 1e-4 (lower layers smaller), budgets by data size.
    config.data.batch_size = 0;
    config.fit.epochs = 0;
    config.fit.optimizer = "adam:lr=1e-4";
    config.fit.schedule = "auto";
    config.head.from = "auto";
  }
  return config;
}

namespace {

std::int64_t auto_batch(size_t images, std::int64_t cap) {
  return std::clamp<std::int64_t>(static_cast<std::int64_t>(images / 8), 8, cap);
}

std::int64_t epochs_for(std::int64_t steps, std::int64_t steps_per_epoch) {
  return (steps + steps_per_epoch - 1) / steps_per_epoch;
}

std::int64_t steps_per_epoch(size_t images, std::int64_t batch) {
  return std::max<std::int64_t>(1, epochs_for(static_cast<std::int64_t>(images), batch));
}

}  // namespace

RunConfig RunConfig::resolved(size_t train_images) const {
  RunConfig r = *this;
  if (r.data.batch_size == 0) {
    r.data.batch_size = auto_batch(train_images, 32);
    // Data parallel: a batch the processes can split evenly (each takes batch / processes).
    const std::int64_t ranks = train::world_size();
    r.data.batch_size = (r.data.batch_size + ranks - 1) / ranks * ranks;
  }
  const auto spe = steps_per_epoch(train_images, r.data.batch_size * r.fit.accumulate);
  if (r.fit.epochs == 0) r.fit.epochs = std::clamp<std::int64_t>(epochs_for(300, spe), 5, 40);
  if (r.fit.patience < 0) r.fit.patience = std::max<std::int64_t>(5, epochs_for(100, spe));
  if (r.command != "finetune") return r;
  if (r.head.batch_size == 0) r.head.batch_size = auto_batch(train_images, 64);
  const auto head_spe = steps_per_epoch(train_images, r.head.batch_size);
  if (r.head.epochs == 0)
    r.head.epochs = r.head.steps > 0 ? epochs_for(r.head.steps, head_spe)
                                     : std::max<std::int64_t>(10, epochs_for(500, head_spe));
  r.head.steps = r.head.epochs * head_spe;
  if (r.head.patience == 0) r.head.patience = std::max<std::int64_t>(10, epochs_for(100, head_spe));
  if (r.baseline == "scratch" && r.baseline_optimizer.empty())
    r.baseline_optimizer = baseline_optimizer_for(r.fit.optimizer);
  return r;
}

void RunConfig::validate() const {
  TLKIT_CHECK(command == "train" || command == "finetune", "unknown run command '", command,
              "'; use train or finetune");
  TLKIT_CHECK(!model.empty(), "--model is required");
  TLKIT_CHECK(!out.empty(), "--out is required");
  TLKIT_CHECK(!data.source.empty(),
              "no data source given; pass --data DIR (or cifar10:DIR, fashion-mnist:DIR)");
  if (const auto why = missing_reason(model); !why.empty())
    fail("cannot read model '", model.string(), "': ", why);
  data::check_output_outside_data(out, data.source);
  TLKIT_CHECK(data.val_split >= 0 && data.val_split < 1, "--val-split must be in [0, 1), got ",
              data.val_split);
  TLKIT_CHECK(data.batch_size >= 0, "--batch-size must be positive (or 0 = auto), got ",
              data.batch_size);
  TLKIT_CHECK(data.workers >= 1 && data.workers <= 256, "--workers must be in [1, 256], got ",
              data.workers);
  TLKIT_CHECK(data.flip >= 0 && data.flip <= 1, "--flip must be in [0, 1], got ", data.flip);
  TLKIT_CHECK(data.min_crop_scale > 0 && data.min_crop_scale <= 1,
              "--min-crop-scale must be in (0, 1], got ", data.min_crop_scale);
  TLKIT_CHECK(data.sampler == "shuffle" || data.sampler == "balanced",
              "--sampler must be shuffle or balanced, got '", data.sampler, "'");
  check_augment_flags(data.augment_policy, data.random_erasing, data.erasing_value);
  check_preprocess(data.preprocess);
  TLKIT_CHECK(fit.epochs >= 0, "--epochs must be positive (or 0 = auto), got ", fit.epochs);
  TLKIT_CHECK(fit.patience >= -1, "--patience must be >= 0 (0 = off, -1 = auto), got ",
              fit.patience);
  TLKIT_CHECK(fit.min_delta >= 0, "--min-delta must be >= 0, got ", fit.min_delta);
  TLKIT_CHECK(fit.val_every >= 1, "--val-every must be >= 1, got ", fit.val_every);
  TLKIT_CHECK(fit.ema_decay >= 0 && fit.ema_decay < 1, "--ema-decay must be in [0, 1), got ",
              fit.ema_decay);
  TLKIT_CHECK(fit.overfit_batches >= 0, "--overfit-batches must be >= 0 (0 = off), got ",
              fit.overfit_batches);
  TLKIT_CHECK(fit.grad_clip >= 0, "--grad-clip must be >= 0 (0 = off), got ", fit.grad_clip);
  TLKIT_CHECK(
      fit.grad_clip_mode == "norm" || fit.grad_clip_mode == "value" || fit.grad_clip_mode == "agc",
      "--grad-clip-mode must be norm, value or agc, got '", fit.grad_clip_mode, "'");
  TLKIT_CHECK(
      std::isfinite(fit.label_smoothing) && fit.label_smoothing >= 0 && fit.label_smoothing < 1,
      "--label-smoothing must be in [0, 1) (0 = off, 0.1 is usual), got ", fit.label_smoothing);
  TLKIT_CHECK(fit.accumulate >= 1 && fit.accumulate <= 4096,
              "--accumulate must be in [1, 4096] batches per optimizer step (1 = off), got ",
              fit.accumulate);
  try {
    train::check_class_weights_spec(fit.class_weights);
  } catch (const Error& e) {
    fail("--class-weights: ", e.what());
  }
  check_mix_flags(fit.mixup, fit.cutmix, fit.mix_prob, fit.mix_switch_prob, fit.mix_off_epoch);
  TLKIT_CHECK(
      fit.on_nonfinite == "stop" || fit.on_nonfinite == "skip" || fit.on_nonfinite == "rollback",
      "--on-nonfinite must be stop, skip or rollback, got '", fit.on_nonfinite, "'");
  train::check_precision(train::parse_precision(fit.precision), fit.device);
  TLKIT_CHECK(fit.batch_norm == "frozen" || fit.batch_norm == "train",
              "--batch-norm must be train or frozen, got '", fit.batch_norm, "'");
  TLKIT_CHECK(
      fit.monitor == "val_loss" || fit.monitor == "val_acc" || fit.monitor == "val_balanced_acc",
      "--monitor must be val_loss, val_acc or val_balanced_acc, got '", fit.monitor, "'");
  check_specs(fit.optimizer, fit.schedule, std::max<std::int64_t>(fit.epochs, 1),
              command == "finetune" ? "stage 2" : "training");
  if (command == "finetune") {
    TLKIT_CHECK(cv_folds == -1 || cv_folds == 0 || cv_folds >= 2,
                "--cv-folds must be at least 2 (or --no-cv), got ", cv_folds);
    TLKIT_CHECK(head.epochs >= 0, "--head-epochs must be positive (or 0 = auto), got ",
                head.epochs);
    TLKIT_CHECK(head.steps >= 0, "--head-steps must be positive (or 0 = auto), got ", head.steps);
    TLKIT_CHECK(head.patience >= 0, "--head-patience must be >= 0 (0 = auto), got ", head.patience);
    TLKIT_CHECK(head.solver == "auto" || head.solver == "gradient",
                "--head-solver must be auto or gradient, got '", head.solver, "'");
    TLKIT_CHECK(head.batch_size >= 0, "--head-batch-size must be positive (or 0 = auto), got ",
                head.batch_size);
    TLKIT_CHECK(lr_decay > 0 && lr_decay <= 1, "--lr-decay must be in (0, 1], got ", lr_decay);
    TLKIT_CHECK(lr_floor >= 0 && lr_floor < 1, "--lr-floor must be in [0, 1), got ", lr_floor);
    check_specs(head.optimizer, head.schedule, std::max<std::int64_t>(head.epochs, 1),
                "stage 1 (--head-optimizer / --head-schedule)");
    if (!lr_rules.empty()) model::parse_lr_rules(lr_rules);
    TLKIT_CHECK(baseline.empty() || baseline == "none" || baseline == "scratch",
                "--baseline must be scratch or none, got '", baseline, "'");
    if (baseline == "scratch")
      check_specs(
          baseline_optimizer.empty() ? baseline_optimizer_for(fit.optimizer) : baseline_optimizer,
          fit.schedule, std::max<std::int64_t>(fit.epochs, 1),
          "the baseline (--baseline-optimizer)");
  } else {
    TLKIT_CHECK(baseline.empty() || baseline == "none", "--baseline is a finetune option");
  }
  TLKIT_CHECK(calibrate == "none" || calibrate == "temperature",
              "--calibrate must be none or temperature, got '", calibrate, "'");
  // A finetune interrupted during its cross-validation resumes from its finished folds (cv/).
  if (resume && !(command == "finetune" && fs::is_directory(out / "cv"))) {
    const auto last = out / "checkpoints" / "last.pt";
    if (const auto why = missing_reason(last); !why.empty())
      fail("cannot resume: '", last.string(), "': ", why, "; run without --resume");
  }
}

namespace {
// "fit.batch_size" -> "--batch-size", "head.epochs" -> "--head-epochs".
std::string flag_of(const std::string& key) {
  static const std::map<std::string, std::string> special{
      {"reinitialize", "--reinit"},
      {"data.augment", "--no-augment"},
      {"data.augment_policy", "--augment"},
      {"cv_augment", "--no-cv-augment"},
      {"data.source", "--data"},
      {"data.preprocess.input_size", "--input-size"},
      {"data.preprocess.resize", "--resize"},
      {"data.preprocess.mean", "--mean"},
      {"data.preprocess.std", "--std"}};
  if (const auto it = special.find(key); it != special.end()) return it->second;
  auto name = key.substr(key.rfind('.') + 1);
  if (key.rfind("head.", 0) == 0) name = "head-" + name;
  std::replace(name.begin(), name.end(), '_', '-');
  return "--" + name;
}
}  // namespace

void check_mix_flags(double mixup, double cutmix, double prob, double switch_prob,
                     std::int64_t off_epoch) {
  TLKIT_CHECK(std::isfinite(mixup) && mixup >= 0,
              "--mixup must be a Beta alpha >= 0 (0 = off, 0.2 is usual), got ", mixup);
  TLKIT_CHECK(std::isfinite(cutmix) && cutmix >= 0,
              "--cutmix must be a Beta alpha >= 0 (0 = off, 1 is usual), got ", cutmix);
  TLKIT_CHECK(prob >= 0 && prob <= 1,
              "--mix-prob must be a probability in [0, 1] (of mixing a batch), got ", prob);
  TLKIT_CHECK(switch_prob >= 0 && switch_prob <= 1,
              "--mix-switch-prob must be a probability in [0, 1] (of cutmix rather than mixup), got ",
              switch_prob);
  TLKIT_CHECK(off_epoch >= 0,
              "--mix-off-epoch must be >= 0 (mix in the first N epochs; 0 = all), got ", off_epoch);
}

void check_augment_flags(const std::string& policy, double random_erasing,
                         const std::string& erasing_value) {
  try {
    data::parse_auto_augment(policy);
  } catch (const Error& e) {
    fail("--augment: ", e.what());
  }
  TLKIT_CHECK(std::isfinite(random_erasing) && random_erasing >= 0 && random_erasing <= 1,
              "--random-erasing must be a probability in [0, 1] (0 = off, 0.25 is usual), got ",
              random_erasing);
  TLKIT_CHECK(erasing_value == "0" || erasing_value == "random",
              "--erasing-value must be 0 or random (per-pixel normal draws), got '", erasing_value,
              "'");
}

std::string describe_augmentation(const DataOptions& data) {
  auto text = fmt::format("random crop {:.2g}-1 of the area, flip {:.2g}", data.min_crop_scale,
                          data.flip);
  const auto policy = data::parse_auto_augment(data.augment_policy);
  if (policy.policy == "trivial") text += ", TrivialAugmentWide";
  if (policy.policy == "rand")
    text += fmt::format(", RandAugment {} ops at magnitude {}", policy.num_ops, policy.magnitude);
  if (data.random_erasing > 0)
    text += fmt::format(", random erasing {:g} (value {})", data.random_erasing,
                        data.erasing_value);
  return text;
}

train::MixOptions mix_options(const FitOptions& fit, std::uint64_t seed) {
  train::MixOptions mix;
  mix.mixup_alpha = fit.mixup;
  mix.cutmix_alpha = fit.cutmix;
  mix.prob = fit.mix_prob;
  mix.switch_prob = fit.mix_switch_prob;
  mix.off_epoch = fit.mix_off_epoch;
  mix.seed = seed;
  return mix;
}

std::string describe_mixing(const train::MixOptions& mix) {
  std::string what;
  if (mix.mixup_alpha > 0) what += fmt::format("mixup alpha {:g}", mix.mixup_alpha);
  if (mix.cutmix_alpha > 0)
    what += fmt::format("{}cutmix alpha {:g}", what.empty() ? "" : ", ", mix.cutmix_alpha);
  if (mix.mixup_alpha > 0 && mix.cutmix_alpha > 0)
    what += fmt::format(" (cutmix on {:g} of the mixed batches)", mix.switch_prob);
  return fmt::format(
      "batch mixing: {}, {:g} of the batches, {}; the training loss is the soft-target "
      "cross-entropy and train_acc counts the target with the larger share (lambda >= 0.5: the "
      "image's own label)",
      what, mix.prob,
      mix.off_epoch > 0 ? fmt::format("in the first {} epochs", mix.off_epoch)
                        : std::string("every epoch"));
}

std::vector<std::string> RunConfig::resume_conflicts(const RunConfig& earlier) const {
  static const std::set<std::string> may_change{"out",           "model",        "resume",       "model_sha256",
                                                "fit.epochs",    "fit.patience", "fit.min_delta",
                                                "fit.val_every", "fit.device",   "fit.progress",
                                                "data.workers",  "data.source"};
  RunConfig now = *this, before = earlier;
  const auto mine = fields(now), theirs = fields(before);
  std::vector<std::string> conflicts;
  for (size_t i = 0; i < mine.size(); ++i) {
    if (may_change.count(mine[i].key)) continue;
    const auto a = theirs[i].get().dump(), b = mine[i].get().dump();
    if (a != b) conflicts.push_back(flag_of(mine[i].key) + ": the run used " + a + ", now " + b);
  }
  return conflicts;
}

Json RunConfig::to_json() const {
  RunConfig copy = *this;
  Json json = Json::object();
  json["format"] = kFormat;
  json["version"] = kVersion;
  for (const auto& f : fields(copy)) {
    Json* node = &json;
    const auto parts = split_trimmed(f.key, '.');
    for (size_t i = 0; i + 1 < parts.size(); ++i) node = &(*node)[parts[i]];
    (*node)[parts.back()] = f.get();
  }
  return json;
}

RunConfig RunConfig::from_json(const Json& json) {
  TLKIT_CHECK(json.is_object(), "a run config is a JSON object");
  TLKIT_CHECK(!json.contains("version") || json.at("version").as_int() <= kVersion,
              "config version ", json.at("version").as_int(), " is newer than this tlkit reads (",
              kVersion, ")");
  RunConfig config =
      defaults(json.contains("command") ? json.at("command").as_string() : "finetune");
  auto table = fields(config);
  // Every leaf of the JSON must name a field.
  std::function<void(const Json&, const std::string&)> visit = [&](const Json& node,
                                                                   const std::string& prefix) {
    for (const auto& key : node.keys()) {
      const auto dotted = prefix.empty() ? key : prefix + "." + key;
      if (prefix.empty() && (key == "format" || key == "version")) continue;
      const auto& value = node.at(key);
      const auto match =
          std::find_if(table.begin(), table.end(), [&](const Field& f) { return f.key == dotted; });
      if (match == table.end() && value.is_object()) {
        visit(value, dotted);
        continue;
      }
      TLKIT_CHECK(match != table.end(), "config: unknown setting '", dotted, "'");
      try {
        match->set(value);
      } catch (const Error& e) {
        fail("config: '", dotted, "': ", e.what());
      }
    }
  };
  visit(json, "");
  // In a file tlkit wrote (it has a version), a setting added later reads as the behaviour of the
  // tlkit that wrote it, so a resumed run continues as it started: weight decay on every
  // parameter, every layer trained. A file a user wrote (no version) takes the defaults.
  if (!json.contains("version")) return config;
  const auto has = [&json](const std::string& dotted) {
    const Json* node = &json;
    for (const auto& part : split_trimmed(dotted, '.')) {
      if (!node->is_object() || !node->contains(part)) return false;
      node = &node->at(part);
    }
    return true;
  };
  if (!has("fit.decay_all")) config.fit.decay_all = true;
  if (!has("lr_floor")) config.lr_floor = 0;
  return config;
}

RunConfig RunConfig::load(const fs::path& path) {
  if (const auto why = missing_reason(path); !why.empty())
    fail("cannot read config '", path.string(), "': ", why);
  try {
    return from_json(Json::parse(read_file(path)));
  } catch (const Error& e) {
    fail("cannot use config '", path.string(), "': ", e.what());
  }
}

void RunConfig::save(const fs::path& path) const {
  write_file_atomic(path, to_json().dump(2) + "\n");
}

}  // namespace tlkit::pipeline
