// Guards and loggers: NonFiniteGuard, InitialLossCheck, CsvLogger, TensorBoardLogger.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/script_checks.h>
#include <tlkit/schedule/lr_scheduler.h>
#include <tlkit/train/callbacks.h>
#include <tlkit/train/network.h>
#include <tlkit/train/trainer.h>

namespace tlkit::train {

namespace {

// True when the loss and every gradient are finite. One sum per gradient: a NaN or Inf anywhere
// makes its sum non-finite.
bool step_is_finite(const TrainContext& context) {
  if (!std::isfinite(context.batch_loss)) return false;
  // One sum per gradient, read back once: a single device sync per step, not one per parameter.
  std::vector<at::Tensor> sums;
  for (const auto& group : context.optimizer.param_groups()) {
    for (const auto& parameter : group.params()) {
      const auto& grad = parameter.grad();
      if (grad.defined()) sums.push_back(grad.sum().to(at::kDouble));
    }
  }
  return sums.empty() || at::stack(sums).isfinite().all().item<bool>();
}

// The first trainable weight holding a NaN/Inf ("" when all are finite): one sync. Checked where a
// step has already failed and once an epoch, not after every update: NaN/Inf weights make the
// next step's loss non-finite, which the step check catches anyway.
std::string broken_weight(const TrainContext& context) {
  NamedTensors trainable;
  for (const auto& group : context.optimizer.param_groups())
    for (const auto& parameter : group.params())
      trainable.emplace_back("parameter " + std::to_string(trainable.size()), parameter);
  if (model::first_nonfinite(trainable).empty()) return {};
  const auto name = model::first_nonfinite(context.network.named_state());  // named, now
  return name.empty() ? std::string("a parameter") : name;
}

}  // namespace

void NonFiniteGuard::on_before_optimizer_step(TrainContext& context) {
  // Overflowed gradients under loss scaling are the scaler's to handle (the step is skipped and
  // the scale backed off); a non-finite loss is not, whatever the scale.
  if (context.loss_scale_overflow && std::isfinite(context.batch_loss)) return;
  const bool finite = context.gradients_checked_finite ? std::isfinite(context.batch_loss)
                                                       : step_is_finite(context);
  if (finite) {
    skipped_in_a_row_ = 0;
    return;
  }
  const double lr = context.optimizer.param_groups().front().options().get_lr();
  const auto where = "at epoch " + std::to_string(context.epoch + 1) + ", batch " +
                     std::to_string(context.batch + 1) + " (step " +
                     std::to_string(context.global_step + 1) + ")";
  // A non-finite loss from NaN/Inf weights: the previous update broke them, and skipping this
  // step cannot mend that.
  const auto weight = std::isfinite(context.batch_loss) ? std::string() : broken_weight(context);
  const auto what = std::isfinite(context.batch_loss) ? std::string("a gradient became NaN/Inf")
                    : weight.empty()
                        ? "the training loss became " + std::to_string(context.batch_loss)
                        : "the previous update made the weights NaN/Inf (" + weight + ")";
  if (policy_ == NonFinitePolicy::kRollback && rollbacks_ < max_skips_ && !good_weights_.empty()) {
    roll_back(context, what + " " + where);
    return;
  }
  if (policy_ == NonFinitePolicy::kSkip && weight.empty() && skipped_in_a_row_ < max_skips_) {
    ++skipped_in_a_row_;
    ++skipped_total_;
    context.skip_step = true;
    logger()->warn("{} {}; the step is skipped ({} in a row)", what, where, skipped_in_a_row_);
    return;
  }
  fail(what, " in ", context.trainer.options().label, " ", where,
       "; the update was not applied. This stage's learning rate (", lr,
       ") is probably too high: lower it (", lr_option_,
       " NAME:lr=..., or try 'tlkit lr-find'), clip gradients (--grad-clip 1), or check the "
       "inputs for NaN/Inf");
}

void NonFiniteGuard::on_train_begin(TrainContext& context) {
  if (policy_ == NonFinitePolicy::kRollback) keep_good_state(context);
}

void NonFiniteGuard::keep_good_state(TrainContext& context) {
  good_weights_ = clone_state(context.network);
  {
    torch::serialize::OutputArchive archive;
    context.optimizer.save(archive);
    std::ostringstream bytes;
    archive.save_to(bytes);
    good_optimizer_ = bytes.str();
  }
  good_schedule_.clear();
  if (context.scheduler) {
    torch::serialize::OutputArchive archive;
    context.scheduler->save(archive);
    std::ostringstream bytes;
    archive.save_to(bytes);
    good_schedule_ = bytes.str();
  }
  good_epoch_ = context.epoch;
  lr_scale_ = 1;
}

void NonFiniteGuard::roll_back(TrainContext& context, const std::string& what) {
  ++rollbacks_;
  lr_scale_ *= 0.5;  // since the state kept: each rollback from the same state halves again
  copy_state(context.network, good_weights_);
  {
    std::istringstream bytes(good_optimizer_);
    torch::serialize::InputArchive archive;
    archive.load_from(bytes);
    context.optimizer.load(archive);
  }
  if (context.scheduler && !good_schedule_.empty()) {
    std::istringstream bytes(good_schedule_);
    torch::serialize::InputArchive archive;
    archive.load_from(bytes);
    context.scheduler->load(archive);
    context.scheduler->scale_lrs(lr_scale_);
  } else {
    for (auto& group : context.optimizer.param_groups())
      group.options().set_lr(group.options().get_lr() * lr_scale_);
  }
  context.skip_step = true;
  logger()->warn(
      "{}; rolled back to the weights, optimizer and schedule state of {} and halved the "
      "learning rate (now {:.3g}; rollback {} of at most {})",
      what,
      good_epoch_ == 0 ? std::string("the start")
                       : "the end of epoch " + std::to_string(good_epoch_),
      context.optimizer.param_groups().front().options().get_lr(), rollbacks_, max_skips_);
}

bool NonFiniteGuard::on_epoch_end(TrainContext& context) {
  // The epoch's last update, before anything keeps these weights (a checkpoint, the best weights,
  // the rollback state).
  if (const auto weight = broken_weight(context); !weight.empty()) {
    const auto what = "the last update of epoch " + std::to_string(context.epoch + 1) +
                      " made the weights NaN/Inf (" + weight + ")";
    if (policy_ == NonFinitePolicy::kRollback && rollbacks_ < max_skips_ &&
        !good_weights_.empty()) {
      roll_back(context, what);
      return false;
    }
    fail(what, " in ", context.trainer.options().label,
         "; the run stops (the last checkpoint holds earlier weights). This stage's learning rate "
         "is probably too high: lower it (",
         lr_option_,
         " NAME:lr=...), clip gradients (--grad-clip 1), or use --on-nonfinite rollback");
  }
  if (policy_ == NonFinitePolicy::kRollback &&
      std::isfinite(context.metrics.get("train_loss").value_or(0))) {
    keep_good_state(context);
    good_epoch_ = context.epoch + 1;
  }
  if (warned_absurd_) return false;
  const auto classes = std::max<std::int64_t>(2, context.trainer.options().num_classes);
  const double chance = std::log(static_cast<double>(classes));
  for (const auto* name : {"train_loss", "val_loss"}) {
    const auto loss = context.metrics.get(name);
    if (!loss || !std::isfinite(*loss) || *loss <= 100 * chance) continue;
    warned_absurd_ = true;
    logger()->warn(
        "{}: the {} is {:.3g} after epoch {} ({:.0f}x the chance level ln({}) = {:.3g}): the "
        "weights have blown up without becoming NaN, and this model is useless. Lower this "
        "stage's learning rate ({} NAME:lr=...) or clip gradients (--grad-clip 1)",
        context.trainer.options().label, name, *loss, context.epoch + 1, *loss / chance, classes,
        chance, lr_option_);
    break;
  }
  return false;
}

void InitialLossCheck::on_batch_end(TrainContext& context) {
  if (plausible_ || context.global_step != 1) return;
  // With small random weights a softmax classifier predicts ~uniformly: loss ≈ ln(C).
  const double expected = std::log(static_cast<double>(num_classes_));
  const double tolerance = std::max(0.5, 0.25 * expected);
  plausible_ = std::fabs(context.batch_loss - expected) <= tolerance;
  if (*plausible_) {
    logger()->debug("initial loss {:.4f}, ln({}) = {:.4f}: plausible", context.batch_loss,
                    num_classes_, expected);
  } else {
    logger()->warn(
        "initial loss {:.4f} is far from ln({}) = {:.4f}: check the labels, the number of classes, "
        "the head's initialisation and the input normalisation (fine when starting from a trained "
        "head)",
        context.batch_loss, num_classes_, expected);
  }
}

namespace {
std::string csv_number(double value) {
  char text[40];
  std::snprintf(text, sizeof(text), "%.8g", value);
  return text;
}
}  // namespace

void CsvLogger::on_train_begin(TrainContext& context) {
  // On resume, keep the rows of the epochs before the one training restarts at.
  if (context.epoch == 0 || !std::filesystem::exists(path_)) {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
    columns_.clear();
    return;
  }
  std::istringstream lines(read_file(path_));
  std::string header, line, kept;
  std::getline(lines, header);
  std::istringstream names(header);
  for (std::string name; std::getline(names, name, ',');) columns_.push_back(name);
  while (std::getline(lines, line)) {
    if (std::strtod(line.c_str(), nullptr) <= static_cast<double>(context.epoch))
      kept += line + "\n";
  }
  write_file_atomic(path_, header + "\n" + kept);
}

bool CsvLogger::on_epoch_end(TrainContext& context) {
  std::string text;
  if (columns_.empty()) {
    for (const auto& item : context.metrics.items()) columns_.push_back(item.first);
    for (size_t i = 0; i < columns_.size(); ++i) text += (i ? "," : "") + columns_[i];
    text += "\n";
  }
  for (size_t i = 0; i < columns_.size(); ++i) {
    const auto value = context.metrics.get(columns_[i]);
    text += (i ? "," : "") + (value ? csv_number(*value) : std::string());
  }
  text += "\n";
  if (std::filesystem::exists(path_)) text = read_file(path_) + text;
  write_file_atomic(path_, text);
  return false;
}

void TensorBoardLogger::on_train_begin(TrainContext&) {
  if (!writer_) writer_ = std::make_unique<TensorBoardWriter>(dir_);
}

bool TensorBoardLogger::on_epoch_end(TrainContext& context) {
  const auto step = context.epoch + 1;
  for (const auto& [name, value] : context.metrics.items()) {
    if (name == "epoch") continue;
    // train_loss -> train/loss, lr_group0 -> lr/group0, ema_val_acc -> ema/val_acc
    std::string tag = name;
    const auto underscore = tag.find('_');
    if (underscore != std::string::npos) tag[underscore] = '/';
    writer_->add_scalar(prefix_.empty() ? tag : prefix_ + "/" + tag, value, step);
  }
  writer_->flush();
  return false;
}

}  // namespace tlkit::train
