#include <tlkit/train/trainer.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <sstream>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/interrupt.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/progress.h>
#include <tlkit/core/strings.h>
#include <tlkit/schedule/lr_scheduler.h>
#include <tlkit/train/distributed.h>

namespace tlkit::train {
namespace {

// 2: the monitored metric's tracker is the trainer's; callbacks hold no weights (1: the tracker was
// the checkpoint callback's, early stopping held a copy of the best weights).
constexpr std::int64_t kCheckpointVersion = 2;

// Names one per line (tensor names, class folder names: no newlines), as checkpoints store them.
std::string join_lines(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += name + "\n";
  return text;
}

std::string join_names(const NamedTensors& state) {
  std::vector<std::string> names;
  for (const auto& entry : state) names.push_back(entry.first);
  return join_lines(names);
}

// History as text: one line per epoch, "name=value" pairs separated by spaces (%.17g: exact).
std::string encode_history(const std::vector<Metrics>& history) {
  std::string text;
  char number[40];
  for (const auto& metrics : history) {
    for (const auto& [name, value] : metrics.items()) {
      std::snprintf(number, sizeof(number), "%.17g", value);
      text += name + "=" + number + " ";
    }
    text += "\n";
  }
  return text;
}

std::vector<Metrics> decode_history(const std::string& text) {
  std::vector<Metrics> history;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    Metrics metrics;
    std::istringstream items(line);
    std::string item;
    while (items >> item) {
      const auto eq = item.find('=');
      if (eq != std::string::npos)
        metrics.set(item.substr(0, eq), std::strtod(item.c_str() + eq + 1, nullptr));
    }
    history.push_back(std::move(metrics));
  }
  return history;
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) names.push_back(line);
  return names;
}

void check_classes(const std::filesystem::path& path, const std::vector<std::string>& saved,
                   const std::vector<std::string>& now) {
  TLKIT_CHECK(saved == now, "checkpoint '", path.string(), "' was trained on the classes [",
              join(saved, ", "), "] but the data now has [", join(now, ", "),
              "]: resuming would shift the labels. Restore the class folders, or start a new "
              "run without --resume");
}

at::Tensor cpu_rng_state() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_cpu_rng_state(const at::Tensor& state) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace

// What a data-parallel fit needs beyond the plain loop: the group, the gradient averager and the
// buffers (batch-norm statistics) that rank 0's copy overrides after every step.
struct Trainer::Parallel {
  Communicator& comm;
  std::unique_ptr<GradientAverager> averager;
  std::vector<at::Tensor> buffers;
  double reported_seconds = 0;
};

Trainer::Trainer(Network& network, torch::optim::Optimizer& optimizer, TrainerOptions options)
    : network_(network),
      optimizer_(optimizer),
      options_(std::move(options)),
      monitor_(options_.monitor, options_.monitor_mode, options_.min_delta) {
  TLKIT_CHECK(options_.epochs > 0, "epochs must be positive, got ", options_.epochs);
  TLKIT_CHECK(options_.val_every >= 1, "val_every must be >= 1, got ", options_.val_every);
  TLKIT_CHECK(options_.accumulate >= 1, "accumulate must be >= 1 (1 = off), got ",
              options_.accumulate);
  TLKIT_CHECK(options_.num_classes > 0,
              "TrainerOptions::num_classes must be set (the model's output size)");
  check_loss_options(options_.loss, options_.num_classes);
  check_mix_options(options_.mix);
  if (options_.scale_loss) scaler_ = std::make_unique<LossScaler>(options_.loss_scaler);
}

Trainer::~Trainer() = default;

void Trainer::set_scheduler(std::shared_ptr<schedule::LRScheduler> scheduler) {
  scheduler_ = std::move(scheduler);
}

void Trainer::add_callback(std::shared_ptr<Callback> callback) {
  for (const auto& existing : callbacks_)
    TLKIT_CHECK(existing->name() != callback->name(), "two callbacks are named '", callback->name(),
                "'");
  const auto position =
      std::upper_bound(callbacks_.begin(), callbacks_.end(), callback->order(),
                       [](CallbackOrder order, const std::shared_ptr<Callback>& other) {
                         return static_cast<int>(order) < static_cast<int>(other->order());
                       });
  callbacks_.insert(position, std::move(callback));
}

std::vector<double> Trainer::learning_rates() const {
  std::vector<double> rates;
  for (const auto& group : optimizer_.param_groups()) rates.push_back(group.options().get_lr());
  return rates;
}

Evaluation Trainer::evaluate(BatchSource& source) {
  return train::evaluate(network_, source, options_.num_classes, options_.device);
}

Metrics Trainer::train_epoch(TrainContext& context, BatchSource& train, Parallel* parallel) {
  network_.train(true);
  train.start_epoch(context.epoch);
  ProgressBar bar(options_.label + " epoch " + std::to_string(context.epoch + 1) + "/" +
                      std::to_string(options_.epochs),
                  context.batches_per_epoch);
  bar.set_enabled(options_.progress && is_main_process());
  if (resume_mid_epoch_) {
    // A checkpoint written by an interrupt: this epoch's first batches are done already.
    train.skip(epoch_batch_);
    resume_mid_epoch_ = false;
  } else {
    epoch_batch_ = 0;
    epoch_loss_sum_ = 0;
    epoch_correct_ = epoch_seen_ = 0;
  }
  double& loss_sum = epoch_loss_sum_;
  std::int64_t &correct = epoch_correct_, &seen = epoch_seen_;
  context.batch = epoch_batch_;
  int stop_signal = 0;
  // Gradient accumulation: the micro-batches of one optimizer step, their summed loss x images,
  // correct predictions and images. A step takes `accumulate` batches (fewer at the epoch's end).
  std::int64_t in_step = 0, step_batches = 1;
  double step_loss = 0, step_correct = 0, step_seen = 0, last_loss = 0;
  // After the step's last micro-batch: the averaged gradients, clipping, the callbacks, the
  // update, the schedule; everything that counts steps counts this one.
  const auto finish_step = [&]() {
    double n = step_seen;
    double batch_correct = step_correct;
    context.batch_loss = in_step == 1 ? last_loss : step_loss / step_seen;
    if (parallel) {
      // Every rank sees the whole batch's loss and counts: decisions stay the same on all ranks.
      if (parallel->averager) parallel->averager->average(network_.trainable_parameters());
      // The stop flag travels with the sums: every rank stops after the same step.
      const auto sums = allreduce_sum(parallel->comm, {context.batch_loss * n, batch_correct, n,
                                                       static_cast<double>(interrupt_signal())});
      context.batch_loss = sums[0] / sums[2];
      batch_correct = sums[1];
      n = sums[2];
      stop_signal = agreed_signal(sums[3], parallel->comm.world_size());
    }
    // Unscaled before clipping; the averaged gradients are the same on every rank, so every rank
    // finds the same overflow.
    context.loss_scale_overflow = false;
    if (scaler_) {
      context.loss_scale_overflow = scaler_->unscale(network_.trainable_parameters());
      if (context.loss_scale_overflow && std::isfinite(context.batch_loss))
        logger()->debug("{}: gradients overflowed at loss scale {}; step {} skipped",
                        options_.label, scaler_->scale_value(), global_step_ + 1);
      scaler_->update(context.loss_scale_overflow);
    }
    context.gradients_checked_finite = scaler_ && !context.loss_scale_overflow;
    if (options_.grad_clip_norm > 0 && !context.loss_scale_overflow)
      clip_gradients(network_.trainable_parameters(), options_.grad_clip_mode,
                     options_.grad_clip_norm);
    context.skip_step = context.loss_scale_overflow;
    for (auto& callback : callbacks_) callback->on_before_optimizer_step(context);
    if (!context.skip_step) optimizer_.step();
    if (parallel && !parallel->buffers.empty())
      broadcast_tensors(parallel->comm, parallel->buffers);
    if (scheduler_ && options_.schedule_step == ScheduleStep::kPerBatch) {
      TLKIT_CHECK(!scheduler_->uses_metric(), scheduler_->name(),
                  " needs a validation metric: step it per epoch");
      scheduler_->step();
    }
    ++global_step_;

    context.batch_size = static_cast<std::int64_t>(n);
    context.global_step = global_step_;
    loss_sum += context.batch_loss * n;
    correct += static_cast<std::int64_t>(batch_correct);
    seen += static_cast<std::int64_t>(n);
    for (auto& callback : callbacks_) callback->on_batch_end(context);
    context.batch += in_step;
    epoch_batch_ = context.batch;
    in_step = 0;
    bar.update(context.batch, {{"loss", loss_sum / static_cast<double>(seen)},
                               {"acc", static_cast<double>(correct) / static_cast<double>(seen)},
                               {"lr", learning_rates().front()}});
    if (!parallel) stop_signal = interrupt_signal();
    if (stop_signal != 0 && context.batch < context.batches_per_epoch) {
      bar.finish({});
      interrupt(context, stop_signal);
    }
  };
  while (auto batch = train.next()) {
    if (in_step == 0) {
      optimizer_.zero_grad();
      step_batches = std::clamp<std::int64_t>(context.batches_per_epoch - context.batch, 1,
                                              options_.accumulate);
      step_loss = step_correct = step_seen = 0;
    }
    auto inputs = batch->inputs.to(options_.device);
    auto targets = batch->targets.to(options_.device);
    at::Tensor soft_targets;
    if (options_.mix.enabled()) {
      const bool images = inputs.dim() == 4;
      const auto draw =
          options_.mix.active(context.epoch)
              ? draw_mix(options_.mix, images ? inputs.size(2) : 0, images ? inputs.size(3) : 0,
                         mix_seed(options_.mix.seed, context.epoch, context.batch + in_step))
              : MixDraw{};
      auto mixed = mix_batch(inputs, targets, draw, options_.num_classes,
                             options_.loss.label_smoothing);
      inputs = std::move(mixed.inputs);
      soft_targets = std::move(mixed.soft_targets);
      targets = std::move(mixed.dominant_targets);  // what train_acc counts
    }
    auto logits = network_.forward(inputs);
    // The class weights as a tensor once (per device and dtype of the logits), not every step.
    if (!options_.loss.class_weights.empty() &&
        (!class_weight_.defined() || class_weight_.device() != logits.device() ||
         (class_weight_.scalar_type() == at::kDouble) != (logits.scalar_type() == at::kDouble)))
      class_weight_ = class_weight_tensor(options_.loss.class_weights, logits);
    auto loss = soft_targets.defined()
                    ? soft_target_loss(logits, soft_targets, class_weight_)
                    : classification_loss(logits, targets, options_.loss.label_smoothing,
                                          class_weight_);
    // loss / k over k micro-batches: their summed gradients are the gradient of the mean loss of
    // one batch k times as large (equal micro-batches), as timm's and Lightning's accumulation.
    const auto backward_loss = step_batches > 1 ? loss / static_cast<double>(step_batches) : loss;
    if (scaler_)
      scaler_->scale(backward_loss).backward();
    else
      backward_loss.backward();
    const double n = static_cast<double>(targets.size(0));
    last_loss = loss.item<double>();
    step_loss += last_loss * n;
    step_correct += static_cast<double>(logits.argmax(1).eq(targets).sum().item<std::int64_t>());
    step_seen += n;
    if (++in_step == step_batches) finish_step();
  }
  if (in_step > 0) finish_step();  // a source that ended before its announced batch count
  TLKIT_CHECK(seen > 0, "the training data yielded no batch in epoch ", context.epoch + 1);
  Metrics metrics;
  metrics.set("epoch", static_cast<double>(context.epoch + 1));
  metrics.set("train_loss", loss_sum / static_cast<double>(seen));
  metrics.set("train_acc", static_cast<double>(correct) / static_cast<double>(seen));
  if (parallel && parallel->averager) {
    // Seconds this epoch spent in the gradient allreduce (the communication share of the steps).
    const double total = parallel->averager->communication_seconds();
    metrics.set("allreduce_s", total - parallel->reported_seconds);
    parallel->reported_seconds = total;
  }
  bar.finish(metrics.items());
  epoch_batch_ = 0;  // the epoch is whole: a checkpoint from here on starts the next one
  return metrics;
}

void Trainer::interrupt(TrainContext& context, int signal) {
  context.stop_reason.clear();
  for (auto& callback : callbacks_) callback->on_interrupt(context);
  std::string where = options_.label + ", ";
  if (context.batch > 0)
    where += "epoch " + std::to_string(context.epoch + 1) + "/" + std::to_string(options_.epochs) +
             " after batch " + std::to_string(context.batch) + " of " +
             std::to_string(context.batches_per_epoch);
  else
    where +=
        "after epoch " + std::to_string(context.epoch + 1) + "/" + std::to_string(options_.epochs);
  throw Interrupted(
      signal, "stopped by " + signal_name(signal) + " (" + where + "); " +
                  (context.stop_reason.empty() ? std::string("no checkpoint is kept for this stage")
                                               : context.stop_reason));
}

void Trainer::step_scheduler_after_epoch(const Metrics& metrics, bool validation_skipped) {
  if (!scheduler_ || options_.schedule_step != ScheduleStep::kPerEpoch) return;
  if (!scheduler_->uses_metric()) {
    scheduler_->step();
    return;
  }
  if (validation_skipped) return;  // a metric-driven schedule steps on validated epochs
  const auto monitored = metrics.get(options_.monitor);
  TLKIT_CHECK(monitored.has_value(), scheduler_->name(), " watches '", options_.monitor,
              "', which this run does not compute (is there validation data?)");
  scheduler_->step_with_metric(*monitored);
}

FitResult Trainer::fit(BatchSource& train, BatchSource* val) {
  TrainContext context{*this, network_, optimizer_};
  context.scheduler = scheduler_.get();
  context.epochs = options_.epochs;
  context.epoch = next_epoch_;
  context.global_step = global_step_;
  context.batches_per_epoch = train.batches_per_epoch();
  context.monitor = &monitor_;

  // Data parallel when the training batches are split between the ranks: every rank starts from
  // rank 0's weights and buffers.
  std::unique_ptr<Parallel> parallel;
  if (train.shards() > 1) {
    auto* comm = world();
    TLKIT_CHECK(comm && comm->world_size() == train.shards(), "the training data is split into ",
                train.shards(), " shards but this process is not one of ", train.shards(),
                " ranks (train::set_world)");
    parallel = std::make_unique<Parallel>(Parallel{*comm, nullptr, {}, 0});
    if (options_.average_gradients) {
      parallel->averager = std::make_unique<GradientAverager>(*comm);
      // Accumulating: the gradients are averaged once, after the step's last micro-batch, not
      // overlapped with each backward.
      if (overlap_allreduce() && options_.accumulate == 1)
        parallel->averager->attach(network_.trainable_parameters());
    }
    std::vector<at::Tensor> state;
    for (const auto& entry : network_.named_state()) state.push_back(entry.second);
    broadcast_tensors(*comm, state);
    std::vector<const void*> params;
    for (const auto& p : network_.parameters()) params.push_back(p.data_ptr());
    for (const auto& t : state)
      if (t.is_floating_point() &&
          std::find(params.begin(), params.end(), static_cast<const void*>(t.data_ptr())) ==
              params.end())
        parallel->buffers.push_back(t);
  }
  for (auto& callback : callbacks_) callback->on_train_begin(context);

  FitResult result;
  for (; next_epoch_ < options_.epochs; ++next_epoch_) {
    context.epoch = next_epoch_;
    // Learning rates used during this epoch (before the per-epoch scheduler step); an epoch
    // resumed in its middle keeps those it started with.
    if (!resume_mid_epoch_) {
      for (auto& callback : callbacks_) callback->on_epoch_begin(context);
      epoch_rates_ = learning_rates();
    }
    const auto rates = epoch_rates_;
    context.metrics = train_epoch(context, train, parallel.get());
    for (size_t g = 0; g < rates.size(); ++g)
      context.metrics.set("lr_group" + std::to_string(g), rates[g]);
    const bool last_epoch = next_epoch_ + 1 == options_.epochs;
    context.validation_skipped = val && options_.val_every > 1 && next_epoch_ > 0 && !last_epoch &&
                                 (next_epoch_ + 1) % options_.val_every != 0;
    if (val && !context.validation_skipped) {
      const auto evaluation = evaluate(*val);
      context.metrics.set("val_loss", evaluation.loss);
      context.metrics.set("val_acc", evaluation.accuracy);
      if (options_.monitor == "val_balanced_acc")
        context.metrics.set("val_balanced_acc", evaluation.balanced_accuracy());
    }
    for (auto& callback : callbacks_) callback->on_validation_end(context);
    context.improved =
        context.metrics.get(monitor_.monitor()).has_value() && monitor_.update(context.metrics);
    step_scheduler_after_epoch(context.metrics, context.validation_skipped);
    history_.push_back(context.metrics);
    bool stop = false;
    // Every callback sees the epoch's end (loggers, checkpoints), even after one asked to stop.
    // The epoch counter advances first so a checkpoint written here resumes at the next epoch.
    ++next_epoch_;
    for (auto& callback : callbacks_) stop = callback->on_epoch_end(context) || stop;
    --next_epoch_;
    if (stop) {
      result.stop_reason =
          context.stop_reason.empty() ? "stopped by a callback" : context.stop_reason;
      ++next_epoch_;
      break;
    }
    // A signal during validation or the epoch's end: the checkpoint just written is the place to
    // resume from (ranks agree on it).
    const int signal = parallel ? agreed_interrupt_signal() : interrupt_signal();
    if (signal != 0 && next_epoch_ + 1 < options_.epochs) {
      ++next_epoch_;
      context.batch = 0;
      context.epoch = next_epoch_ - 1;
      interrupt(context, signal);
    }
  }
  for (auto& callback : callbacks_) callback->on_train_end(context);
  result.epochs_run = static_cast<std::int64_t>(history_.size());
  result.history = history_;
  return result;
}

void Trainer::save_checkpoint(const std::filesystem::path& path) const {
  if (!is_main_process()) return;  // every rank holds the same state; rank 0 writes it
  torch::serialize::OutputArchive archive;
  archive.write("tlkit_checkpoint_version", c10::IValue(kCheckpointVersion));
  archive.write("epoch", c10::IValue(next_epoch_));
  archive.write("global_step", c10::IValue(global_step_));
  archive.write("history", c10::IValue(encode_history(history_)));
  // Mid-epoch position (all 0 at an epoch's end): a checkpoint an interrupt wrote resumes with
  // the next batch, with the epoch's sums and its starting learning rates.
  archive.write("epoch_batch", c10::IValue(epoch_batch_));
  archive.write("epoch_sums",
                at::tensor(std::vector<double>{epoch_loss_sum_, static_cast<double>(epoch_correct_),
                                               static_cast<double>(epoch_seen_)},
                           at::kDouble),
                /*is_buffer=*/true);
  archive.write("epoch_rates",
                at::tensor(epoch_batch_ > 0 ? epoch_rates_ : std::vector<double>{0.0}, at::kDouble),
                /*is_buffer=*/true);
  const auto state = network_.named_state();
  archive.write("model_names", c10::IValue(join_names(state)));
  if (!options_.class_names.empty())
    archive.write("class_names", c10::IValue(join_lines(options_.class_names)));
  torch::serialize::OutputArchive model;
  for (size_t i = 0; i < state.size(); ++i)
    model.write("t" + std::to_string(i), state[i].second.detach(), /*is_buffer=*/true);
  archive.write("model", model);
  torch::serialize::OutputArchive optimizer;
  optimizer_.save(optimizer);
  archive.write("optimizer", optimizer);
  if (scheduler_) {
    torch::serialize::OutputArchive scheduler;
    scheduler_->save(scheduler);
    archive.write("scheduler", scheduler);
  }
  torch::serialize::OutputArchive monitor;
  monitor_.save(monitor);
  archive.write("monitor", monitor);
  for (const auto& callback : callbacks_) {
    torch::serialize::OutputArchive callback_archive;
    callback->save(callback_archive);
    archive.write("callback_" + callback->name(), callback_archive);
  }
  if (scaler_)
    archive.write("loss_scaler",
                  at::tensor(std::vector<double>{scaler_->scale_value(),
                                                 static_cast<double>(scaler_->growth_tracker()),
                                                 static_cast<double>(scaler_->skipped_steps())},
                             at::kDouble),
                  /*is_buffer=*/true);
  archive.write("rng", cpu_rng_state(), /*is_buffer=*/true);
  AtomicFile file(path);
  archive.save_to([&file](const void* data, size_t size) { return file.write(data, size); });
  file.commit();
}

namespace {
void open_checkpoint(torch::serialize::InputArchive& archive, const std::filesystem::path& path) {
  try {
    archive.load_from(path.string());
  } catch (const c10::Error& e) {
    fail("cannot read checkpoint '", path.string(), "': ", e.what_without_backtrace(),
         "; pass a checkpoints/last.pt written by tlkit");
  }
}
}  // namespace

void check_checkpoint_classes(const std::filesystem::path& path,
                              const std::vector<std::string>& classes) {
  torch::serialize::InputArchive archive;
  open_checkpoint(archive, path);
  c10::IValue value;
  if (archive.try_read("class_names", value))
    check_classes(path, split_names(value.toStringRef()), classes);
}

void Trainer::resume(const std::filesystem::path& path) {
  torch::serialize::InputArchive archive;
  open_checkpoint(archive, path);
  c10::IValue value;
  TLKIT_CHECK(archive.try_read("tlkit_checkpoint_version", value) && value.toInt() >= 1 &&
                  value.toInt() <= kCheckpointVersion,
              "'", path.string(), "' is not a tlkit checkpoint of format version 1 to ",
              kCheckpointVersion);
  const auto version = value.toInt();
  if (version < kCheckpointVersion)
    logger()->warn("'{}' is a version-{} checkpoint; read with its monitored metric migrated",
                   path.string(), version);
  const auto state = network_.named_state();
  archive.read("model_names", value);
  TLKIT_CHECK(value.toStringRef() == join_names(state), "checkpoint '", path.string(),
              "' was written for a different model (its tensor names differ)");
  if (!options_.class_names.empty() && archive.try_read("class_names", value))
    check_classes(path, split_names(value.toStringRef()), options_.class_names);
  torch::serialize::InputArchive model;
  archive.read("model", model);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < state.size(); ++i) {
      at::Tensor saved;
      model.read("t" + std::to_string(i), saved, /*is_buffer=*/true);
      TLKIT_CHECK(saved.sizes() == state[i].second.sizes(), "checkpoint tensor '", state[i].first,
                  "' has shape ", saved.sizes(), ", the model ", state[i].second.sizes());
      state[i].second.copy_(saved);
    }
  }
  torch::serialize::InputArchive optimizer;
  archive.read("optimizer", optimizer);
  optimizer_.load(optimizer);
  if (scheduler_) {
    torch::serialize::InputArchive scheduler;
    TLKIT_CHECK(archive.try_read("scheduler", scheduler), "checkpoint '", path.string(),
                "' has no schedule state but this run uses a schedule");
    scheduler_->load(scheduler);
  }
  torch::serialize::InputArchive monitor;
  if (archive.try_read(version >= 2 ? "monitor" : "callback_checkpoint", monitor))
    monitor_.load(monitor);
  for (const auto& callback : callbacks_) {
    torch::serialize::InputArchive callback_archive;
    if (archive.try_read("callback_" + callback->name(), callback_archive))
      callback->load(callback_archive);
  }
  if (scaler_) {
    at::Tensor saved;
    if (archive.try_read("loss_scaler", saved, /*is_buffer=*/true)) {
      const auto values = saved.to(at::kDouble).contiguous();
      const auto* v = values.data_ptr<double>();
      scaler_->set_state(v[0], static_cast<std::int64_t>(v[1]), static_cast<std::int64_t>(v[2]));
    } else {
      logger()->warn(
          "'{}' holds no loss-scaler state (written without loss scaling); the scale "
          "starts again at {}",
          path.string(), scaler_->scale_value());
    }
  }
  at::Tensor rng;
  archive.read("rng", rng, /*is_buffer=*/true);
  set_cpu_rng_state(rng);
  archive.read("epoch", value);
  next_epoch_ = value.toInt();
  archive.read("global_step", value);
  global_step_ = value.toInt();
  archive.read("history", value);
  history_ = decode_history(value.toStringRef());
  epoch_batch_ = archive.try_read("epoch_batch", value) ? value.toInt() : 0;
  resume_mid_epoch_ = epoch_batch_ > 0;
  if (resume_mid_epoch_) {
    at::Tensor sums, rates;
    archive.read("epoch_sums", sums, /*is_buffer=*/true);
    archive.read("epoch_rates", rates, /*is_buffer=*/true);
    epoch_loss_sum_ = sums[0].item<double>();
    epoch_correct_ = static_cast<std::int64_t>(sums[1].item<double>());
    epoch_seen_ = static_cast<std::int64_t>(sums[2].item<double>());
    epoch_rates_.assign(rates.data_ptr<double>(), rates.data_ptr<double>() + rates.numel());
    TLKIT_CHECK(epoch_rates_.size() == optimizer_.param_groups().size(), "checkpoint '",
                path.string(), "' has ", epoch_rates_.size(), " learning rates for ",
                optimizer_.param_groups().size(), " parameter groups");
  }
  if (resume_mid_epoch_)
    logger()->info("resumed from '{}' in epoch {} after batch {} (step {})", path.string(),
                   next_epoch_ + 1, epoch_batch_, global_step_);
  else
    logger()->info("resumed from '{}' at epoch {} (step {})", path.string(), next_epoch_ + 1,
                   global_step_);
}

}  // namespace tlkit::train
