// tlkit bench: the tuning protocol, the runs, resume, and the result files (report: bench_report).
#include <tlkit/pipeline/bench.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/utsname.h>

#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/optim/optimizer.h>
#include <torch/version.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/run_folder.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/strings.h>
#include <tlkit/core/threads.h>
#include <tlkit/data/auto_augment.h>
#include <tlkit/data/dataset.h>
#include <tlkit/data/loader.h>
#include <tlkit/data/random.h>
#include <tlkit/data/random_erasing.h>
#include <tlkit/data/sampler.h>
#include <tlkit/data/subset.h>
#include <tlkit/data/transforms.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/optim/settings.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/problems.h>
#include <tlkit/schedule/lr_scheduler.h>
#include <tlkit/train/callback.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/loader_source.h>
#include <tlkit/train/trainer.h>
#include <tlkit/version.h>

#include "bench_report.h"

namespace tlkit::pipeline {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_lr(double lr) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", lr);
  return text;
}

}  // namespace

// ------------------------------------------------------------------ grids
std::vector<double> parse_lr_grid(const std::string& spec, const std::string& optimizer) {
  const auto text = trim(spec);
  TLKIT_CHECK(!text.empty(), "--lr-grid is empty; use auto, LO:HI:PER_DECADE or a list of values");
  std::vector<double> grid;
  auto number = [&](const std::string& s) {
    try {
      size_t used = 0;
      const double v = std::stod(s, &used);
      TLKIT_CHECK(used == s.size(), "");
      TLKIT_CHECK(std::isfinite(v) && v > 0, "");
      return v;
    } catch (...) {
      fail("--lr-grid: '", s, "' is not a positive number (in '", spec, "')");
    }
  };
  if (text == "auto") {
    const auto lr = optim::default_lr(optim::parse_optimizer_settings(optimizer).name);
    const double centre = lr ? *lr : 0.01;
    return {centre / 10, centre, centre * 10};
  }
  if (text.find(':') != std::string::npos) {
    const auto parts = split_trimmed(text, ':');
    TLKIT_CHECK(parts.size() == 3, "--lr-grid '", spec,
                "': use LO:HI:PER_DECADE, e.g. 1e-4:1:3 (3 values per decade)");
    const double lo = number(parts[0]), hi = number(parts[1]);
    const double per_decade = number(parts[2]);
    TLKIT_CHECK(hi >= lo, "--lr-grid '", spec, "': HI must not be below LO");
    TLKIT_CHECK(per_decade == std::floor(per_decade) && per_decade <= 20, "--lr-grid '", spec,
                "': PER_DECADE must be a whole number in 1..20");
    const double step = 1.0 / per_decade;
    const double decades = std::log10(hi / lo);
    const auto n = static_cast<std::int64_t>(std::floor(decades / step + 1e-9));
    TLKIT_CHECK(n < 200, "--lr-grid '", spec, "' has more than 200 values");
    for (std::int64_t k = 0; k <= n; ++k) grid.push_back(lo * std::pow(10.0, k * step));
    return grid;
  }
  for (const auto& part : split_trimmed(text, ',')) grid.push_back(number(part));
  std::sort(grid.begin(), grid.end());
  grid.erase(std::unique(grid.begin(), grid.end()), grid.end());
  return grid;
}

std::map<std::string, double> parse_lr_overrides(const std::string& spec) {
  std::map<std::string, double> out;
  if (trim(spec).empty()) return out;
  for (const auto& item : split_trimmed(spec, ',')) {
    const auto eq = item.find('=');
    TLKIT_CHECK(eq != std::string::npos && eq > 0, "--lr '", item,
                "': use OPTIMIZER=VALUE, e.g. adam=1e-3,sgd=0.1");
    const auto name = trim(item.substr(0, eq));
    double value = 0;
    try {
      value = std::stod(item.substr(eq + 1));
    } catch (...) {
      fail("--lr '", item, "': '", item.substr(eq + 1), "' is not a number");
    }
    TLKIT_CHECK(std::isfinite(value) && value > 0, "--lr '", item, "': the lr must be > 0");
    out[name] = value;
  }
  return out;
}

double next_grid_extension(const std::map<double, double>& scores, double ratio,
                           std::int64_t& extensions_low, std::int64_t& extensions_high,
                           std::int64_t max_extensions) {
  if (scores.size() < 2 || ratio <= 1) return 0;
  auto best = scores.begin();
  for (auto it = scores.begin(); it != scores.end(); ++it) {
    if (it->second > best->second) best = it;
  }
  // A grid where nothing trained (every score 0) has no edge worth following.
  if (best->second <= 0) return 0;
  constexpr double kLowest = 1e-8, kHighest = 100;
  if (best == scores.begin() && extensions_low < max_extensions) {
    const double next = best->first / ratio;
    if (next >= kLowest) {
      ++extensions_low;
      return next;
    }
  }
  if (std::next(best) == scores.end() && extensions_high < max_extensions) {
    const double next = best->first * ratio;
    if (next <= kHighest) {
      ++extensions_high;
      return next;
    }
  }
  return 0;
}

// ------------------------------------------------------------------ config
Json BenchConfig::to_json() const {
  Json j = Json::object();
  j["problem"] = problem;
  j["model"] = model.string();
  j["keep_weights"] = keep_weights;
  j["data"] = data;
  j["input_size"] = preprocess.input_size;
  j["resize"] = preprocess.resize;
  j["mean"] = preprocess.mean;
  j["std"] = preprocess.std;
  j["optimizers"] = optimizers;
  j["schedules"] = schedules;
  j["epochs"] = epochs;
  j["tune_epochs"] = tune_epochs;
  j["seeds"] = seeds;
  j["tune_seeds"] = tune_seeds;
  j["lr_grid"] = lr_grid;
  j["max_extensions"] = max_extensions;
  Json fixed = Json::object();
  for (const auto& [name, value] : lr) fixed[name] = value;
  j["lr"] = fixed;
  j["target"] = target;
  j["val_split"] = val_split;
  j["test_split"] = test_split;
  j["limit"] = static_cast<std::int64_t>(limit);
  j["batch_size"] = batch_size;
  j["seed"] = static_cast<std::int64_t>(seed);
  j["device"] = device.str();
  // Recipe options only when set: a bench written before they existed resumes unchanged.
  if (label_smoothing != 0) j["label_smoothing"] = label_smoothing;
  if (class_weights != "none") j["class_weights"] = class_weights;
  if (sampler != "shuffle") j["sampler"] = sampler;
  if (accumulate != 1) j["accumulate"] = accumulate;
  // Always written: weight decay left biases and norm weights out from this version on, so a
  // bench of an earlier version (every parameter decayed) is not resumed as if it were the same.
  j["decay_all"] = decay_all;
  if (grad_clip != 0) j["grad_clip"] = grad_clip;
  if (grad_clip_mode != "norm") j["grad_clip_mode"] = grad_clip_mode;
  if (mixup != 0) j["mixup"] = mixup;
  if (cutmix != 0) j["cutmix"] = cutmix;
  if (mixup != 0 || cutmix != 0) {
    j["mix_prob"] = mix_prob;
    j["mix_switch_prob"] = mix_switch_prob;
    j["mix_off_epoch"] = mix_off_epoch;
  }
  if (augment != "none") j["augment"] = augment;
  if (random_erasing != 0) {
    j["random_erasing"] = random_erasing;
    j["erasing_value"] = erasing_value;
  }
  return j;
}

void BenchConfig::validate() const {
  TLKIT_CHECK(problem.empty() != model.empty(), "give either --problem (",
              join(test_problem_names(), ", "), ") or --model M.pt");
  if (!problem.empty()) {
    test_problem(problem);
    TLKIT_CHECK(!preprocess.any(),
                "--input-size/--resize/--mean/--std apply to --model; a test problem fixes its own "
                "preprocessing");
  } else {
    TLKIT_CHECK(fs::is_regular_file(model), "--model ", model, " is not a file");
  }
  TLKIT_CHECK(!out.empty(), "--out is required: the folder for the results");
  TLKIT_CHECK(!optimizers.empty(), "--optimizers is empty");
  TLKIT_CHECK(!schedules.empty(), "--schedules is empty");
  for (const auto& name : optimizers) optim::parse_optimizer_settings(name);
  for (const auto& [name, value] : lr) {
    TLKIT_CHECK(std::find(optimizers.begin(), optimizers.end(), name) != optimizers.end(), "--lr ",
                name, "=", value, ": '", name, "' is not one of --optimizers (",
                join(optimizers, ","), ")");
  }
  for (const auto& name : optimizers) parse_lr_grid(lr_grid, name);
  TLKIT_CHECK(epochs >= 0 && epochs <= 100000, "--epochs ", epochs, " is out of range");
  TLKIT_CHECK(tune_epochs >= 0 && tune_epochs <= 100000, "--tune-epochs ", tune_epochs,
              " is out of range");
  TLKIT_CHECK(seeds >= 1 && seeds <= 1000, "--seeds must be in 1..1000");
  TLKIT_CHECK(tune_seeds >= 1 && tune_seeds <= 100, "--tune-seeds must be in 1..100");
  TLKIT_CHECK(max_extensions >= 0 && max_extensions <= 20, "--max-extensions must be in 0..20");
  TLKIT_CHECK(target == -1 || (target >= 0 && target <= 1), "--target ", target,
              " must be a validation accuracy in [0, 1] (0 = none)");
  TLKIT_CHECK(val_split > 0 && val_split < 1, "--val-split ", val_split,
              " must be in (0, 1): the lr is tuned on a validation split, never on test");
  TLKIT_CHECK(test_split >= 0 && test_split < 1, "--test-split ", test_split, " must be in [0, 1)");
  TLKIT_CHECK(batch_size >= 0 && batch_size <= 65536, "--batch-size ", batch_size,
              " is out of range");
  if (preprocess.any()) check_preprocess(preprocess);
  TLKIT_CHECK(std::isfinite(label_smoothing) && label_smoothing >= 0 && label_smoothing < 1,
              "--label-smoothing must be in [0, 1) (0 = off, 0.1 is usual), got ", label_smoothing);
  try {
    train::check_class_weights_spec(class_weights);
  } catch (const Error& e) {
    fail("--class-weights: ", e.what());
  }
  TLKIT_CHECK(accumulate >= 1 && accumulate <= 4096, "--accumulate must be in [1, 4096], got ",
              accumulate);
  TLKIT_CHECK(std::isfinite(grad_clip) && grad_clip >= 0,
              "--grad-clip must be >= 0 (0 = off), got ", grad_clip);
  train::parse_grad_clip_mode(grad_clip_mode);
  check_mix_flags(mixup, cutmix, mix_prob, mix_switch_prob, mix_off_epoch);
  check_augment_flags(augment, random_erasing, erasing_value);
  TLKIT_CHECK(sampler == "shuffle" || sampler == "balanced",
              "--sampler must be shuffle or balanced, got '", sampler, "'");
}

// ------------------------------------------------------------------ run records
namespace {

// Every field of a run with its JSON key, once, for both directions.
template <typename Run, typename Visit>
void visit_fields(Run& r, Visit&& v) {
  v("id", r.id);
  v("phase", r.phase);
  v("optimizer", r.optimizer);
  v("schedule", r.schedule);
  v("lr", r.lr);
  v("seed", r.seed);
  v("diverged", r.diverged);
  v("diverged_at", r.diverged_at);
  v("initial_loss", r.initial_loss);
  v("epochs_run", r.epochs_run);
  v("steps", r.steps);
  v("final_val_acc", r.final_val_acc);
  v("best_val_acc", r.best_val_acc);
  v("final_val_loss", r.final_val_loss);
  v("final_test_acc", r.final_test_acc);
  v("best_test_acc", r.best_test_acc);
  v("best_test_epoch", r.best_test_epoch);
  v("target_seconds", r.target_seconds);
  v("target_steps", r.target_steps);
  v("target_epoch", r.target_epoch);
  v("train_seconds", r.train_seconds);
  v("optimizer_seconds", r.optimizer_seconds);
  v("eval_seconds", r.eval_seconds);
  v("wall_seconds", r.wall_seconds);
  v("allreduce_seconds", r.allreduce_seconds);
  v("train_loss", r.train_loss);
  v("val_loss", r.val_loss);
  v("val_acc", r.val_acc);
  v("test_loss", r.test_loss);
  v("test_acc", r.test_acc);
  v("epoch_seconds", r.epoch_seconds);
}

// NaN/Inf are written as null (a diverged run's loss) and read back as NaN.
double number_of(const Json& v) { return v.is_null() ? NAN : v.as_double(); }
void read_value(const Json& v, double& out) { out = number_of(v); }
void read_value(const Json& v, std::int64_t& out) { out = v.as_int(); }
void read_value(const Json& v, std::uint64_t& out) { out = static_cast<std::uint64_t>(v.as_int()); }
void read_value(const Json& v, bool& out) { out = v.as_bool(); }
void read_value(const Json& v, std::string& out) { out = v.as_string(); }
void read_value(const Json& v, std::vector<double>& out) {
  out.clear();
  for (const auto& x : v.as_array()) out.push_back(number_of(x));
}
Json json_value(std::uint64_t v) { return static_cast<std::int64_t>(v); }
template <typename T>
Json json_value(const T& v) {
  return v;
}

}  // namespace

Json BenchRun::to_json() const {
  Json j = Json::object();
  visit_fields(*this, [&](const char* key, const auto& value) { j[key] = json_value(value); });
  return j;
}

BenchRun BenchRun::from_json(const Json& j) {
  BenchRun r;
  visit_fields(r, [&](const char* key, auto& value) {
    // Runs written before data parallelism have no allreduce time (none was spent).
    if (std::string(key) == "allreduce_seconds" && !j.contains(key)) return;
    read_value(j.at(key), value);
  });
  return r;
}

Json bench_environment(const c10::Device& device) {
  Json j = Json::object();
  std::string cpu = "unknown";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = trim(line.substr(line.find(':') + 1));
      break;
    }
  }
  j["cpu"] = cpu;
  j["cores"] = static_cast<std::int64_t>(std::thread::hardware_concurrency());
  j["threads"] = static_cast<std::int64_t>(at::get_num_threads());  // per process
  j["processes"] = static_cast<std::int64_t>(train::world_size());  // data-parallel ranks
  j["device"] = device.str();
  j["blas"] = blas_library();
  utsname name{};
  if (uname(&name) == 0) j["os"] = std::string(name.sysname) + " " + name.release;
  j["libtorch"] = std::string(TORCH_VERSION);
  j["tlkit"] = std::string(TLKIT_VERSION_STRING);
  return j;
}

namespace {

// ------------------------------------------------------------------ data
// Thrown from a run whose loss became NaN/Inf.
struct Diverged {
  std::string where;
};

struct BenchData {
  std::vector<std::string> classes;
  std::int64_t channels = 3;
  std::array<double, 3> mean{}, std{};
  at::Tensor mean_t, std_t;  // [1, channels, 1, 1], made once from mean / std
  std::string augmentation = "none";
  bool jitter = false;
  std::int64_t batch_size = 128;
  bool balanced = false;  // --sampler balanced
  // In memory: [N, C, H, W] float pixels in [0, 1] (before normalisation).
  bool in_memory = true;
  at::Tensor train_x, train_y, val_x, val_y, test_x, test_y;
  // Streamed (when the splits do not fit in memory).
  std::shared_ptr<const data::Dataset> train, val, test;
  std::shared_ptr<data::Transform> transform;
  size_t workers = 2;
  // --augment and --random-erasing (in-memory training batches only); null when off.
  std::shared_ptr<data::Transform> policy, erasing;
};

at::Tensor normalize(at::Tensor x, const BenchData& d) {
  if (d.channels == 1 && x.size(1) == 3) x = x.mean(1, true);
  return x.sub(d.mean_t).div_(d.std_t);
}

// DeepOBS's CIFAR-10 augmentation on a batch of [0, 1] pixels: zero-pad by 2 and take a random
// 32 x 32 crop, flip horizontally with probability 1/2, and (jitter) scale brightness by
// U[1 - 63/255, 1 + 63/255], contrast by U[0.2, 1.8] and saturation by U[0.5, 1.5], per image.
// `images` are rows shard, shard + shards, ... of a batch of n (a data-parallel rank's part; all
// of it when shards is 1): the draws are made for the whole batch, so every rank's images are
// those one process would augment.
at::Tensor augment_cifar(const at::Tensor& images, std::int64_t n, bool jitter, std::uint64_t seed,
                         std::int64_t shards, std::int64_t shard) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto m = images.size(0), h = images.size(2), w = images.size(3);
  auto offsets = at::randint(0, 5, {n, 2}, gen, at::kLong);
  auto flips = at::rand({n}, gen) < 0.5;
  const auto rows = at::arange(shard, n, shards, at::kLong);
  TLKIT_CHECK(rows.size(0) == m, "augment_cifar: ", m, " images for ", rows.size(0), " rows");
  auto padded = at::constant_pad_nd(images, {2, 2, 2, 2}, 0);
  auto out = at::empty_like(images);
  const auto* off = offsets.data_ptr<std::int64_t>();
  const auto* flip = flips.data_ptr<bool>();
  for (std::int64_t j = 0; j < m; ++j) {
    const auto i = shard + j * shards;
    auto crop = padded[j].narrow(1, off[2 * i], h).narrow(2, off[2 * i + 1], w);
    out[j].copy_(flip[i] ? crop.flip({2}) : crop);
  }
  if (!jitter || images.size(1) != 3) return out;
  auto factor = [&](double lo, double hi) {
    return (at::rand({n, 1, 1, 1}, gen) * (hi - lo) + lo)
        .to(images.scalar_type())
        .index_select(0, rows);
  };
  const auto brightness = factor(1 - 63.0 / 255, 1 + 63.0 / 255);
  const auto contrast = factor(0.2, 1.8);
  const auto saturation = factor(0.5, 1.5);
  auto grey = [](const at::Tensor& x) {
    return (0.299 * x.select(1, 0) + 0.587 * x.select(1, 1) + 0.114 * x.select(1, 2)).unsqueeze(1);
  };
  out = (out * brightness).clamp(0, 1);
  out = (contrast * out + (1 - contrast) * grey(out).mean({2, 3}, true)).clamp(0, 1);
  out = (saturation * out + (1 - saturation) * grey(out)).clamp(0, 1);
  return out;
}

// --augment and --random-erasing on a batch of [0, 1] pixels, normalised: the policy on each image
// as uint8 (x 255, rounded), the erasing after normalisation, both from one generator per image
// keyed by `keys` (its split row, or its place in the epoch's order with balanced sampling), as
// the DataLoader draws them.
at::Tensor augment_and_normalize(const at::Tensor& images, const std::vector<std::uint64_t>& keys,
                                 const BenchData& d, std::uint64_t seed) {
  std::vector<at::Tensor> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    std::mt19937_64 rng(data::derive_seed(seed, keys[i]));
    auto image = images[static_cast<std::int64_t>(i)];
    if (d.policy) {
      auto pixels = image.mul(255).round_().clamp_(0, 255).to(at::kByte).permute({1, 2, 0});
      pixels = (*d.policy)(pixels.contiguous(), rng);
      image = pixels.permute({2, 0, 1}).to(at::kFloat).div_(255);
    }
    image = normalize(image.unsqueeze(0), d).squeeze(0);
    if (d.erasing) image = (*d.erasing)(image, rng);
    out.push_back(image);
  }
  return at::stack(out);
}

// Batches from the in-memory splits: the order of an epoch depends on (seed, epoch) only, the
// augmentation on (seed, epoch, batch), so every optimizer sees the same data for a seed.
// Data parallel (train::world_size() N > 1): --batch-size is the step's whole batch; rank r
// trains on rows r, r + N, ... of each one-process batch (DistributedSampler's split of the
// epoch's order) and evaluates rows r, r + N, ... of the split (the ranks' sums are added).
class MemorySource : public train::BatchSource {
 public:
  MemorySource(const BenchData& data, at::Tensor x, at::Tensor y, bool train, std::uint64_t seed)
      : data_(data),
        x_(std::move(x)),
        y_(std::move(y)),
        train_(train),
        seed_(seed),
        shards_(train::world_size()),
        shard_(train::world_rank()) {
    const auto b = std::min<std::int64_t>(data_.batch_size, x_.size(0));
    TLKIT_CHECK(!train_ || b % shards_ == 0, "the batch size ", b, " does not split evenly over ",
                shards_, " processes: give --batch-size a multiple of ", shards_);
    TLKIT_CHECK(x_.size(0) >= shards_, "a split of ", x_.size(0), " images cannot be shared by ",
                shards_, " processes");
    if (!train_ && shards_ > 1) {
      x_ = x_.slice(0, shard_, x_.size(0), shards_);
      y_ = y_.slice(0, shard_, y_.size(0), shards_);
    }
    if (train_ && data_.balanced) {
      const auto y = y_.contiguous();
      labels_.assign(y.data_ptr<std::int64_t>(), y.data_ptr<std::int64_t>() + y.numel());
    }
  }
  void start_epoch(std::int64_t epoch) override {
    epoch_ = epoch;
    position_ = 0;
    batch_ = 0;
    if (!train_) {
      order_ = at::Tensor();
    } else if (data_.balanced) {
      const auto order = data::balanced_order(
          labels_, data::derive_seed(seed_, static_cast<std::uint64_t>(epoch), 1));
      order_ = at::tensor(std::vector<std::int64_t>(order.begin(), order.end()), at::kLong);
    } else {
      order_ = train::epoch_permutation(x_.size(0), seed_, epoch);
    }
  }
  std::optional<train::Batch> next() override {
    const auto n = x_.size(0), b = batch_size();
    // Training drops the last partial batch (as DeepOBS does); evaluation sees every image.
    if (position_ >= n || (train_ && position_ + b > n)) return std::nullopt;
    const auto count = std::min(b, n - position_);
    at::Tensor x, y;
    if (train_) {
      const auto batch = order_.narrow(0, position_, count);
      const auto mine = batch.slice(0, shard_, count, shards_);
      x = x_.index_select(0, mine);
      y = y_.index_select(0, mine);
      if (data_.augmentation == "cifar")
        x = augment_cifar(x, count, data_.jitter,
                          data::derive_seed(seed_, static_cast<std::uint64_t>(epoch_),
                                            static_cast<std::uint64_t>(batch_)),
                          shards_, shard_);
      if (data_.policy || data_.erasing) {
        const auto rows = mine.contiguous();
        std::vector<std::uint64_t> keys;
        for (std::int64_t j = 0; j < rows.size(0); ++j) {
          const auto place = position_ + shard_ + j * shards_;  // in the whole step's batch order
          keys.push_back(static_cast<std::uint64_t>(
              data_.balanced ? place : rows.data_ptr<std::int64_t>()[j]));
        }
        position_ += count;
        ++batch_;
        return train::Batch{
            augment_and_normalize(x, keys, data_,
                                  data::derive_seed(data::derive_seed(seed_, 4),
                                                    static_cast<std::uint64_t>(epoch_))),
            y};
      }
    } else {
      x = x_.narrow(0, position_, count);
      y = y_.narrow(0, position_, count);
    }
    position_ += count;
    ++batch_;
    return train::Batch{normalize(x, data_), y};
  }
  std::int64_t batches_per_epoch() const override {
    const auto n = x_.size(0), b = batch_size();
    return train_ ? n / b : (n + b - 1) / b;
  }
  std::int64_t size() const override {
    return train_ ? x_.size(0) / shards_ : x_.size(0);  // this rank's share
  }
  std::int64_t shards() const override { return shards_; }

 private:
  // Training: the whole step's batch (split at next()); evaluation: this rank's batch.
  std::int64_t batch_size() const {
    const auto b = std::min<std::int64_t>(data_.batch_size, x_.size(0));
    return train_ ? b : std::max<std::int64_t>(1, data_.batch_size / shards_);
  }

  const BenchData& data_;
  at::Tensor x_, y_, order_;
  std::vector<std::int64_t> labels_;  // balanced sampling only
  bool train_;
  std::uint64_t seed_;
  std::int64_t shards_, shard_;
  std::int64_t epoch_ = 0, position_ = 0, batch_ = 0;
};

// A streamed split, normalised per batch.
class StreamSource : public train::BatchSource {
 public:
  StreamSource(const BenchData& data, std::shared_ptr<train::BatchSource> inner)
      : data_(data), inner_(std::move(inner)) {}
  void start_epoch(std::int64_t epoch) override { inner_->start_epoch(epoch); }
  std::optional<train::Batch> next() override {
    auto batch = inner_->next();
    if (batch) batch->inputs = normalize(batch->inputs, data_);
    return batch;
  }
  std::int64_t batches_per_epoch() const override { return inner_->batches_per_epoch(); }
  std::int64_t size() const override { return inner_->size(); }
  std::int64_t shards() const override { return inner_->shards(); }

 private:
  const BenchData& data_;
  std::shared_ptr<train::BatchSource> inner_;
};

std::shared_ptr<train::BatchSource> source(const BenchData& d, const std::string& split,
                                           std::uint64_t seed) {
  const bool train = split == "train";
  if (d.in_memory) {
    const auto& x = train ? d.train_x : split == "val" ? d.val_x : d.test_x;
    const auto& y = train ? d.train_y : split == "val" ? d.val_y : d.test_y;
    return std::make_shared<MemorySource>(d, x, y, train, seed);
  }
  DataOptions options;
  options.batch_size = d.batch_size;
  options.workers = d.workers;
  options.seed = seed;
  options.sampler = d.balanced ? "balanced" : "shuffle";
  const auto& dataset = train ? d.train : split == "val" ? d.val : d.test;
  return std::make_shared<StreamSource>(d, make_loader(dataset, d.transform, options, train));
}

std::pair<at::Tensor, at::Tensor> load_split(const std::shared_ptr<const data::Dataset>& dataset,
                                             const std::shared_ptr<data::Transform>& transform,
                                             const BenchData& d) {
  // The whole split on every rank (not make_loader's shard of it): MemorySource splits the
  // batches, so that N processes follow one process's trajectory.
  data::LoaderOptions options;
  options.batch_size = 512;
  options.workers = d.workers;
  options.shuffle = false;
  train::LoaderSource loader_source(
      std::make_shared<data::DataLoader>(dataset, transform, options));
  auto* loader = &loader_source;
  loader->start_epoch(0);
  std::vector<at::Tensor> xs, ys;
  while (auto batch = loader->next()) {
    auto x = batch->inputs;
    if (d.channels == 1 && x.size(1) == 3) x = x.mean(1, true);
    xs.push_back(x);
    ys.push_back(batch->targets);
  }
  TLKIT_CHECK(!xs.empty(), "no images in ", dataset->describe());
  return {at::cat(xs), at::cat(ys)};
}

// ------------------------------------------------------------------ one run
// Records a run's curves and clocks (evaluation off the clock), adds the problem's L2 gradient
// and stops the run when the loss is no longer finite.
class Recorder : public train::Callback {
 public:
  Recorder(BenchRun& run, std::vector<at::Tensor> l2_weights, double l2, train::BatchSource* test,
           double target, std::int64_t num_classes)
      : run_(run),
        l2_weights_(std::move(l2_weights)),
        l2_(l2),
        test_(test),
        target_(target),
        num_classes_(num_classes) {}
  std::string name() const override { return "bench_recorder"; }
  void on_epoch_begin(train::TrainContext&) override {
    epoch_start_ = last_batch_end_ = Clock::now();
  }
  void on_before_optimizer_step(train::TrainContext& context) override {
    if (!std::isfinite(context.batch_loss)) {
      throw Diverged{"epoch " + std::to_string(context.epoch + 1) + ", step " +
                     std::to_string(context.global_step + 1)};
    }
    if (l2_ > 0) {
      torch::NoGradGuard no_grad;
      for (auto& w : l2_weights_) {
        if (w.grad().defined()) w.mutable_grad().add_(w, l2_);
      }
    }
    step_start_ = Clock::now();
  }
  void on_batch_end(train::TrainContext&) override {
    last_batch_end_ = Clock::now();
    run_.optimizer_seconds += std::chrono::duration<double>(last_batch_end_ - step_start_).count();
  }
  void on_validation_end(train::TrainContext& context) override {
    const double train_time = std::chrono::duration<double>(last_batch_end_ - epoch_start_).count();
    run_.train_seconds += train_time;
    run_.epoch_seconds.push_back(train_time);
    run_.eval_seconds += seconds_since(last_batch_end_);  // validation
    const auto& m = context.metrics;
    run_.train_loss.push_back(m.at("train_loss"));
    run_.val_loss.push_back(m.at("val_loss"));
    run_.val_acc.push_back(m.at("val_acc"));
    run_.steps = context.global_step;
    if (const auto allreduce = m.get("allreduce_s")) run_.allreduce_seconds += *allreduce;
    if (target_ > 0 && run_.target_epoch < 0 && m.at("val_acc") >= target_) {
      run_.target_seconds = run_.train_seconds;
      run_.target_steps = context.global_step;
      run_.target_epoch = context.epoch + 1;
    }
    if (test_) {
      const auto start = Clock::now();
      const auto e =
          train::evaluate(context.network, *test_, num_classes_, context.trainer.options().device);
      run_.test_loss.push_back(e.loss);
      run_.test_acc.push_back(e.accuracy);
      run_.eval_seconds += seconds_since(start);
    }
  }

 private:
  BenchRun& run_;
  std::vector<at::Tensor> l2_weights_;
  double l2_;
  train::BatchSource* test_;
  double target_;
  std::int64_t num_classes_;
  Clock::time_point epoch_start_, last_batch_end_, step_start_;
};

struct Setup {
  BenchConfig config;
  const TestProblem* problem = nullptr;
  std::filesystem::path model_path;
  BenchData data;
  std::int64_t num_classes = 0;
  train::LossOptions loss;  // the class weights resolved on the training split
  train::MixOptions mix;    // batch mixing; its seed is each run's
  double l2 = 0;
  double target = 0;
  Json environment;
};

std::shared_ptr<train::Network> make_network(const Setup& s, std::vector<at::Tensor>& l2_weights) {
  l2_weights.clear();
  if (s.problem) {
    auto net = s.problem->make_network(s.num_classes);
    for (const auto& p : net->module().named_parameters()) {
      if (is_regularized_weight(p.key(), p.value())) l2_weights.push_back(p.value());
    }
    return net;
  }
  auto model = load_model(s.model_path, s.config.preprocess, s.config.device);
  if (!s.config.keep_weights) model.reinitialize();
  if (model.num_classes() != s.num_classes || model.class_names() != s.data.classes)
    model.replace_head(s.num_classes, s.data.classes);
  model.unfreeze_all();
  return std::make_shared<train::ScriptNetwork>(model.module());
}

BenchRun train_one(const Setup& s, const std::string& phase, const std::string& optimizer,
                   const std::string& schedule, double lr, std::uint64_t seed,
                   std::int64_t epochs) {
  const auto wall_start = Clock::now();
  BenchRun run;
  run.phase = phase;
  run.optimizer = optimizer;
  run.schedule = schedule;
  run.lr = lr;
  run.seed = seed;
  // The same seed gives the same initial weights whatever the optimizer.
  torch::manual_seed(seed);
  std::vector<at::Tensor> l2_weights;
  auto network = make_network(s, l2_weights);
  network->to(s.config.device);
  model::ParamGroupSpec group;
  group.name = "all";
  group.lr = lr;
  for (const auto& p : network->trainable_parameters()) group.params.push_back(p);
  auto spec = optim::parse_optimizer_settings(optimizer);
  spec.settings.lr = lr;
  auto opt = build_optimizer(optim::format_optimizer_settings(spec), {group}, s.config.decay_all);

  auto train_source = source(s.data, "train", seed);
  auto val_source = source(s.data, "val", seed);
  auto test_source = phase == "final" ? source(s.data, "test", seed) : nullptr;

  train::TrainerOptions options;
  options.epochs = epochs;
  options.num_classes = s.num_classes;
  options.device = s.config.device;
  options.monitor = "val_acc";
  options.loss = s.loss;
  options.mix = s.mix;
  options.mix.seed = seed;
  options.accumulate = s.config.accumulate;
  options.grad_clip_norm = s.config.grad_clip;
  options.grad_clip_mode = train::parse_grad_clip_mode(s.config.grad_clip_mode);
  options.label = optimizer + "/" + schedule;
  options.progress = s.config.progress;
  train::Trainer trainer(*network, *opt, options);
  trainer.set_scheduler(
      build_scheduler(schedule, *opt, epochs, 1));  // stepped once per epoch, as in train
  auto recorder =
      std::make_shared<Recorder>(run, l2_weights, s.l2, test_source.get(), s.target, s.num_classes);
  trainer.add_callback(recorder);

  {
    const auto start = Clock::now();
    run.initial_loss = train::evaluate(*network, *val_source, s.num_classes, options.device).loss;
    run.eval_seconds += seconds_since(start);
  }
  try {
    trainer.fit(*train_source, val_source.get());
  } catch (const Diverged& d) {
    run.diverged = true;
    run.diverged_at = d.where;
    logger()->debug("{} {} lr {} seed {} diverged at {}", optimizer, schedule, lr, seed, d.where);
  }
  run.epochs_run = static_cast<std::int64_t>(run.val_acc.size());
  if (run.diverged) {
    // The weights of the last finite step, as they would be used.
    const auto start = Clock::now();
    const auto val = train::evaluate(*network, *val_source, s.num_classes, options.device);
    run.final_val_loss = val.loss;
    run.final_val_acc = val.accuracy;
    if (test_source) {
      const auto test = train::evaluate(*network, *test_source, s.num_classes, options.device);
      run.test_acc.push_back(test.accuracy);
      run.test_loss.push_back(test.loss);
    }
    run.eval_seconds += seconds_since(start);
  } else {
    run.final_val_loss = run.val_loss.back();
    run.final_val_acc = run.val_acc.back();
  }
  run.best_val_acc = run.val_acc.empty()
                         ? run.final_val_acc
                         : *std::max_element(run.val_acc.begin(), run.val_acc.end());
  if (!run.test_acc.empty()) {
    run.final_test_acc = run.test_acc.back();
    const auto best = std::max_element(run.test_acc.begin(), run.test_acc.end());
    run.best_test_acc = *best;
    run.best_test_epoch = std::min<std::int64_t>(best - run.test_acc.begin() + 1, run.epochs_run);
  }
  run.steps = std::max(run.steps, trainer.global_step());
  run.wall_seconds = seconds_since(wall_start);
  return run;
}

std::string run_id(const std::string& phase, const std::string& optimizer,
                   const std::string& schedule, double lr, std::uint64_t seed) {
  std::string id = phase + "-" + optimizer + "-" + schedule + "-lr" + format_lr(lr) + "-s" +
                   std::to_string(seed);
  for (auto& c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') c = '_';
  }
  return id;
}

std::string format_duration(double seconds) {
  const auto s = static_cast<std::int64_t>(std::lround(std::max(0.0, seconds)));
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  } else {
    std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return text;
}

// The loop over configurations: finished runs come from disk, the others are trained and saved.
class Runner {
 public:
  Runner(Setup& setup, std::int64_t planned) : s_(setup), planned_(planned) {}

  const BenchRun& get(const std::string& phase, const std::string& optimizer,
                      const std::string& schedule, double lr, std::uint64_t seed,
                      std::int64_t epochs) {
    const auto id = run_id(phase, optimizer, schedule, lr, seed);
    const auto path = s_.config.out / "runs" / (id + ".json");
    // A finished run is kept as rank 0 reads it (data parallel: the other ranks take its text).
    std::string kept;
    if (train::is_main_process() && fs::exists(path)) {
      try {
        kept = read_file(path);
        if (BenchRun::from_json(Json::parse(kept)).id != id) kept.clear();
      } catch (const Error& e) {
        logger()->warn("{} is damaged ({}); running it again", path.string(), e.what());
        kept.clear();
      }
    }
    if (auto* world = train::world()) kept = train::broadcast_string(*world, kept);
    if (!kept.empty()) {
      ++kept_;
      return runs_.emplace_back(BenchRun::from_json(Json::parse(kept)));
    }
    auto run = train_one(s_, phase, optimizer, schedule, lr, seed, epochs);
    run.id = id;
    auto json = run.to_json();
    json["environment"] = s_.environment;
    if (train::is_main_process()) write_file_atomic(path, json.dump(1));
    trained_seconds_ += run.wall_seconds;
    ++trained_;
    const auto done = static_cast<std::int64_t>(runs_.size()) + 1;
    const auto remaining = std::max<std::int64_t>(0, planned_ - done);
    const double eta = trained_seconds_ / static_cast<double>(trained_) * remaining;
    std::string result = run.diverged ? "DIVERGED at " + run.diverged_at
                                      : "val " + format_percent(run.final_val_acc);
    if (run.final_test_acc >= 0) result += ", test " + format_percent(run.final_test_acc);
    logger()->info("[{}/{}] {} {} {} lr {} seed {}: {} ({:.0f} s) · ETA {}", done,
                   std::max(planned_, done), phase, optimizer, schedule, format_lr(lr), seed,
                   result, run.wall_seconds, format_duration(eta));
    return runs_.emplace_back(std::move(run));
  }
  void add_planned(std::int64_t n) { planned_ += n; }
  std::vector<BenchRun>& runs() { return runs_; }
  std::int64_t kept() const { return kept_; }

 private:
  static std::string format_percent(double v) {
    char text[16];
    std::snprintf(text, sizeof(text), "%.2f%%", 100 * v);
    return text;
  }
  Setup& s_;
  std::int64_t planned_;
  std::vector<BenchRun> runs_;
  std::int64_t kept_ = 0, trained_ = 0;
  double trained_seconds_ = 0;
};

Setup prepare(const BenchConfig& config) {
  Setup s;
  s.config = config;
  std::shared_ptr<data::Transform> transform;
  if (!config.problem.empty()) {
    s.problem = &test_problem(config.problem);
    s.data.channels = s.problem->input_channels;
    s.data.mean = s.problem->mean;
    s.data.std = s.problem->std;
    s.data.augmentation = s.problem->augmentation;
    s.data.jitter = s.problem->jitter;
    s.data.batch_size = s.problem->batch_size;
    s.l2 = s.problem->l2;
    s.target = s.problem->target;
    if (s.config.epochs == 0) s.config.epochs = s.problem->epochs;
    if (s.config.data.empty()) s.config.data = s.problem->default_data;
    TLKIT_CHECK(!s.config.data.empty(), "--problem ", s.problem->name,
                " needs --data (e.g. cifar10:DIR with the CIFAR-10 binary batches)");
    const auto size = static_cast<int>(s.problem->input_size);
    transform = data::eval_transform(size, size, data::Normalization{});
  } else {
    s.model_path = config.model;
    Preprocessing pre;
    const auto model = load_model(config.model, config.preprocess, config.device, &pre);
    for (int c = 0; c < 3; ++c) {
      s.data.mean[c] = pre.mean[c];
      s.data.std[c] = pre.std[c];
    }
    s.data.batch_size = 64;
    s.target = 0;
    if (s.config.epochs == 0) s.config.epochs = 10;
    TLKIT_CHECK(!s.config.data.empty(), "--model needs --data");
    transform = data::eval_transform(static_cast<int>(pre.resize), static_cast<int>(pre.input_size),
                                     data::Normalization{}, input_channels(model));
  }
  if (config.batch_size > 0) s.data.batch_size = config.batch_size;
  if (config.target >= 0) s.target = config.target;
  if (s.config.tune_epochs == 0) s.config.tune_epochs = s.config.epochs;
  s.data.workers = config.workers;

  data::SourceOptions options;
  options.val_split = config.val_split;
  options.seed = config.seed;
  options.limit = config.limit;
  auto splits = data::open_source(s.config.data, options);
  TLKIT_CHECK(splits.train && splits.val, "the data has no validation split; give --val-split");
  if (!splits.test && config.test_split > 0) {
    // Carved from the training images left after the val split.
    auto all = splits.train;
    auto parts =
        data::stratified_split(all->labels(), config.test_split, data::derive_seed(config.seed, 7));
    splits.test = std::make_shared<data::Subset>(all, std::move(parts.val), "test split");
    splits.train = std::make_shared<data::Subset>(all, std::move(parts.train), "train");
  }
  TLKIT_CHECK(splits.test, s.config.data,
              " has no test split; the bench reports test accuracy: add a test/ folder or give "
              "--test-split 0.2");
  s.data.classes = splits.train->classes();
  s.num_classes = static_cast<std::int64_t>(s.data.classes.size());
  TLKIT_CHECK(s.num_classes >= 2, "the data has ", s.num_classes, " class; need at least 2");
  s.loss.label_smoothing = config.label_smoothing;
  s.data.balanced = config.sampler == "balanced";
  data::warn_if_imbalanced(*splits.train, "training split");
  try {
    s.loss.class_weights =
        train::resolve_class_weights(config.class_weights, data::class_counts(*splits.train));
  } catch (const Error& e) {
    fail("--class-weights: ", e.what());
  }
  if (!s.loss.class_weights.empty())
    logger()->info("class weights: {}", train::format_class_weights(s.loss.class_weights));
  FitOptions mixing;
  mixing.mixup = config.mixup;
  mixing.cutmix = config.cutmix;
  mixing.mix_prob = config.mix_prob;
  mixing.mix_switch_prob = config.mix_switch_prob;
  mixing.mix_off_epoch = config.mix_off_epoch;
  s.mix = mix_options(mixing, 0);
  if (s.mix.enabled()) logger()->info("{}", describe_mixing(s.mix));
  s.data.policy = data::auto_augment(data::parse_auto_augment(config.augment));
  if (config.random_erasing > 0)
    s.data.erasing = std::make_shared<data::RandomErasing>(config.random_erasing,
                                                           config.erasing_value == "random");
  if (s.data.policy || s.data.erasing)
    logger()->info("per-image augmentation of the training images: {}{}{}",
                   s.data.policy ? s.data.policy->describe() : "",
                   s.data.policy && s.data.erasing ? ", " : "",
                   s.data.erasing ? s.data.erasing->describe() : "");
  s.data.train = splits.train;
  s.data.val = splits.val;
  s.data.test = splits.test;
  s.data.transform = transform;

  // Hold the splits in memory when they fit: no decoding per run, the same tensors for every run.
  const auto c = s.data.channels;
  s.data.mean_t =
      at::tensor(std::vector<double>(s.data.mean.begin(), s.data.mean.begin() + c), at::kFloat)
          .view({1, c, 1, 1});
  s.data.std_t =
      at::tensor(std::vector<double>(s.data.std.begin(), s.data.std.begin() + c), at::kFloat)
          .view({1, c, 1, 1});

  std::mt19937_64 rng;
  const auto probe = (*transform)(splits.train->get(0).image, rng);
  const double per_image = static_cast<double>(probe.numel()) * 4 *
                           (s.data.channels == 1 ? 1.0 / static_cast<double>(probe.size(0)) : 1.0);
  const double total = per_image * static_cast<double>(splits.train->size() + splits.val->size() +
                                                       splits.test->size());
  s.data.in_memory = total <= static_cast<double>(config.max_memory_mb) * 1024 * 1024;
  logger()->info("data: {} train / {} val / {} test images, {} classes; {}", splits.train->size(),
                 splits.val->size(), splits.test->size(), s.num_classes,
                 s.data.in_memory ? "held in memory (" +
                                        std::to_string(static_cast<long>(total / 1048576)) + " MB)"
                                  : "streamed (larger than --max-memory-mb), without augmentation");
  if (s.data.in_memory) {
    std::tie(s.data.train_x, s.data.train_y) = load_split(splits.train, transform, s.data);
    std::tie(s.data.val_x, s.data.val_y) = load_split(splits.val, transform, s.data);
    std::tie(s.data.test_x, s.data.test_y) = load_split(splits.test, transform, s.data);
  }
  return s;
}

double tune_score(const std::vector<const BenchRun*>& runs) {
  double sum = 0;
  for (const auto* r : runs) sum += r->diverged ? 0.0 : r->final_val_acc;
  return sum / static_cast<double>(runs.size());
}

}  // namespace

// ------------------------------------------------------------------ the bench
BenchSummary bench(const BenchConfig& config) {
  config.validate();
  const auto& out = config.out;
  const auto protocol = config.to_json();
  const auto bench_file = out / "bench.json";
  if (!config.data.empty()) data::check_output_outside_data(out, config.data, "the bench folder");
  // Rank 0 owns and locks the folder for the whole bench.
  std::unique_ptr<RunFolder> folder;
  if (train::is_main_process()) folder = std::make_unique<RunFolder>(out, "bench");
  if (config.resume) {
    TLKIT_CHECK(fs::exists(bench_file), "--resume: ", bench_file,
                " does not exist; there is no bench to continue in ", out);
    const auto earlier = Json::parse(read_file(bench_file)).at("config");
    for (const auto& key : protocol.keys()) {
      const auto before = earlier.contains(key) ? earlier.at(key).dump() : std::string("(unset)");
      TLKIT_CHECK(before == protocol.at(key).dump(), "--resume: ", key, " was ", before,
                  " in the interrupted bench and is ", protocol.at(key).dump(),
                  " now; resume with the same options, or start a new bench in another --out");
    }
  }
  auto setup = prepare(config);
  Json record = Json::object();
  record["config"] = protocol;
  record["environment"] = bench_environment(config.device);
  if (folder) {
    folder->remove_stale_temporaries();  // a killed bench's half-written files are never results
    if (!config.resume) folder->start_afresh();  // an earlier bench is set aside, not mixed in
    fs::create_directories(out / "runs");
    write_file_atomic(bench_file, record.dump(2));
  }
  // Data parallel: the other ranks look for finished runs only once rank 0 has cleared them.
  if (auto* world = train::world()) world->barrier();
  setup.environment = record.at("environment");

  const auto& c = setup.config;
  std::int64_t planned = 0;
  for (const auto& opt : c.optimizers) {
    const auto grid = c.lr.count(opt) ? 0 : parse_lr_grid(c.lr_grid, opt).size();
    planned += static_cast<std::int64_t>(c.schedules.size()) *
               (static_cast<std::int64_t>(grid) * c.tune_seeds + c.seeds);
  }
  logger()->info(
      "bench: {} optimizers x {} schedules, {} epochs ({} for tuning), {} seeds; {} runs "
      "planned",
      c.optimizers.size(), c.schedules.size(), c.epochs, c.tune_epochs, c.seeds, planned);
  Runner runner(setup, planned);
  BenchSummary summary;
  for (const auto& opt : c.optimizers) {
    for (const auto& schedule : c.schedules) {
      const auto key = opt + "/" + schedule;
      double chosen = 0;
      if (c.lr.count(opt)) {
        chosen = c.lr.at(opt);
      } else {
        const auto grid = parse_lr_grid(c.lr_grid, opt);
        const double ratio = grid.size() >= 2 ? grid[1] / grid[0] : 10.0;
        std::map<double, double> scores, losses;
        auto evaluate_lr = [&](double lr) {
          std::vector<const BenchRun*> runs;
          double loss = 0;
          for (std::int64_t t = 0; t < c.tune_seeds; ++t) {
            const auto& r =
                runner.get("tune", opt, schedule, lr, c.seed + 1000 + static_cast<std::uint64_t>(t),
                           c.tune_epochs);
            runs.push_back(&r);
            loss += r.diverged ? INFINITY : r.final_val_loss;
          }
          scores[lr] = tune_score(runs);
          losses[lr] = loss;
        };
        for (double lr : grid) evaluate_lr(lr);
        std::int64_t low = 0, high = 0;
        for (;;) {
          const double next = next_grid_extension(scores, ratio, low, high, c.max_extensions);
          if (next <= 0) break;
          logger()->info("{}: the best lr so far is at the edge of the grid; trying {}", key,
                         format_lr(next));
          runner.add_planned(c.tune_seeds);
          evaluate_lr(next);
        }
        auto best = scores.begin();
        for (auto it = scores.begin(); it != scores.end(); ++it) {
          if (it->second > best->second ||
              (it->second == best->second && losses[it->first] < losses[best->first]))
            best = it;
        }
        chosen = best->first;
        logger()->info("{}: lr {} chosen on validation (mean final val accuracy {:.2f}%)", key,
                       format_lr(chosen), 100 * best->second);
      }
      summary.tuned[key] = chosen;
      for (std::int64_t k = 0; k < c.seeds; ++k)
        runner.get("final", opt, schedule, chosen, c.seed + static_cast<std::uint64_t>(k),
                   c.epochs);
    }
  }
  if (runner.kept() > 0)
    logger()->info("kept {} finished runs of the interrupted bench", runner.kept());
  summary.runs = std::move(runner.runs());
  detail::BenchReportInput input{c, record.at("environment"), setup.num_classes, setup.target,
                                 setup.problem ? setup.problem->name : c.model.filename().string()};
  if (folder) {
    detail::write_bench_results(input, summary);
    folder->mark_finished();
  }
  if (auto* world = train::world()) world->barrier();
  return summary;
}

}  // namespace tlkit::pipeline
