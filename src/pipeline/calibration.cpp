// --calibrate temperature: held-out predictions, the folds' record of them, and the calibration of
// the exported model (see calibration.h).
#include "calibration.h"

#include <sstream>

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/serialize.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/temperature.h>
#include <tlkit/train/calibration.h>
#include <tlkit/train/distributed.h>
#include <tlkit/train/ema_callback.h>
#include <tlkit/train/metrics.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline::detail {

std::pair<at::Tensor, at::Tensor> held_out_predictions(train::Network& network,
                                                       train::BatchSource& source,
                                                       const c10::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = network.is_training();
  network.train(false);
  std::vector<at::Tensor> log_p, labels;
  source.start_epoch(0);
  while (auto batch = source.next()) {
    const auto logits = network.forward(batch->inputs.to(device));
    log_p.push_back(at::log_softmax(logits.to(at::kFloat), 1).cpu());
    labels.push_back(batch->targets.to(at::kCPU, at::kLong));
  }
  network.train(was_training);
  TLKIT_CHECK(!log_p.empty(), "held-out predictions: the held-out data is empty");
  return {at::cat(log_p), at::cat(labels)};
}

at::Tensor FoldPredictions::of(const std::string& candidate, std::int64_t epochs) const {
  if (!complete()) return {};
  if (candidate == "stage 1 head") return head;
  const auto& all = candidate == "EMA" ? ema : last;
  if (!all.defined() || epochs < 1 || epochs > all.size(0)) return {};
  return all[epochs - 1];
}

void FoldPredictions::save(const fs::path& file) const {
  std::vector<at::Tensor> tensors{labels, head, last, ema.defined() ? ema : at::Tensor()};
  for (auto& t : tensors)
    if (!t.defined()) t = at::empty({0});
  std::ostringstream bytes;
  torch::save(tensors, bytes);
  write_file_atomic(file, bytes.str());
}

FoldPredictions FoldPredictions::load(const fs::path& file) {
  FoldPredictions record;
  if (!fs::exists(file)) return record;
  try {
    std::vector<at::Tensor> tensors;
    torch::load(tensors, file.string());
    if (tensors.size() != 4) return record;
    record.labels = tensors[0];
    record.head = tensors[1];
    record.last = tensors[2];
    if (tensors[3].numel() > 0) record.ema = tensors[3];
  } catch (const c10::Error& e) {
    logger()->warn("cannot read the held-out predictions in '{}' ({})", file.string(),
                   e.what_without_backtrace());
    return {};
  }
  return record;
}

namespace {

// Adds the last and EMA weights' held-out predictions after each validated epoch.
class PredictionRecorder : public train::Callback {
 public:
  PredictionRecorder(train::BatchSource& held, c10::Device device, FoldPredictions& record,
                     train::EmaCallback* ema)
      : held_(held), device_(device), record_(record), ema_(ema) {}
  std::string name() const override { return "held_out_predictions"; }
  void on_validation_end(train::TrainContext& context) override {
    if (context.validation_skipped) return;
    auto [log_p, labels] = held_out_predictions(context.network, held_, device_);
    append(record_.last, log_p);
    if (!record_.labels.defined()) record_.labels = labels;
    if (ema_) {
      train::ExponentialMovingAverage::SwapGuard averaged(ema_->average());
      append(record_.ema, held_out_predictions(context.network, held_, device_).first);
    }
  }

 private:
  static void append(at::Tensor& all, const at::Tensor& epoch) {
    all = all.defined() ? at::cat({all, epoch.unsqueeze(0)}) : epoch.unsqueeze(0);
  }
  train::BatchSource& held_;
  c10::Device device_;
  FoldPredictions& record_;
  train::EmaCallback* ema_;
};

struct Scores {
  double nll = 0, ece = 0;
};

Scores scores_of(const at::Tensor& log_p, const at::Tensor& labels, double temperature) {
  const auto e = train::classification_metrics(
      train::calibrated_log_probabilities(log_p, temperature), labels, train::ScoreKind::Logits);
  return {e.loss, e.expected_calibration_error()};
}

CalibrationResult skipped(CalibrationResult result, const std::string& why) {
  result.held_out = why;
  logger()->warn("calibration skipped: {}", why);
  return result;
}

}  // namespace

std::function<std::shared_ptr<train::Callback>(train::EmaCallback*)> record_predictions(
    train::BatchSource& held, const c10::Device& device, FoldPredictions& record) {
  return [&held, device, &record](train::EmaCallback* ema) -> std::shared_ptr<train::Callback> {
    return std::make_shared<PredictionRecorder>(held, device, record, ema);
  };
}

CalibrationResult calibrate_exported(const RunConfig& config, model::Classifier& model,
                                     train::Network& network, const HeldOut& held) {
  CalibrationResult result;
  result.mode = config.calibrate;
  model::clear_temperature(model);  // weights trained from a calibrated file are not calibrated
  if (config.calibrate != "temperature") return result;
  if (train::world_size() > 1)
    return skipped(result, "not implemented with data parallelism (--nproc > 1): each rank "
                           "holds a shard of the held-out images");
  at::Tensor log_p, labels;
  if (held.val) {
    std::tie(log_p, labels) = held_out_predictions(network, *held.val, config.fit.device);
    result.held_out = "the val split's predictions of the exported weights";
  } else if (held.fold_log_probabilities.defined()) {
    log_p = held.fold_log_probabilities;
    labels = held.fold_labels;
    result.held_out = held.fold_description;
  } else {
    return skipped(result, held.fold_description.empty()
                               ? "nothing held out (no val split and no cross-validation); T is "
                                 "never fitted on the training images"
                               : held.fold_description);
  }
  const auto fit = train::fit_temperature(log_p, labels);
  if (fit.at_bound) {
    result.at_bound = true;
    const auto right = train::classification_metrics(log_p, labels, train::ScoreKind::Logits);
    return skipped(result, fmt::format(
        "on {} ({} images, {:.1f}% right) the NLL has no minimum for T in [{}, {}] (it falls "
        "toward T = {}); a T at the edge would be an extrapolation, so model.pt is left as "
        "trained",
        result.held_out, labels.size(0), 100 * right.accuracy, train::kMinTemperature,
        train::kMaxTemperature, fit.temperature));
  }
  result.fitted = true;
  result.temperature = fit.temperature;
  const auto measured = [&fit](const at::Tensor& p, const at::Tensor& y) {
    const auto before = scores_of(p, y, 1.0), after = scores_of(p, y, fit.temperature);
    return CalibrationScores{y.size(0), before.nll, after.nll, before.ece, after.ece};
  };
  result.held = measured(log_p, labels);
  if (held.eval) {
    const auto [eval_p, eval_y] = held_out_predictions(network, *held.eval, config.fit.device);
    result.eval_split = held.eval_split;
    result.eval = measured(eval_p, eval_y);
  }
  model::apply_temperature(model, fit.temperature);
  const auto& h = result.held;
  logger()->info("calibration: T = {:.4f} on {} ({} images): NLL {:.4f} -> {:.4f}, ECE {:.4f} -> {:.4f}",
                 fit.temperature, result.held_out, h.examples, h.nll_before, h.nll_after,
                 h.ece_before, h.ece_after);
  if (held.eval)
    logger()->info("calibration on the {} split: NLL {:.4f} -> {:.4f}, ECE {:.4f} -> {:.4f}",
                   result.eval_split, result.eval.nll_before, result.eval.nll_after,
                   result.eval.ece_before, result.eval.ece_after);
  return result;
}

std::string calibration_markdown(const CalibrationResult& c) {
  if (c.mode != "temperature") return "";
  std::string md = "\n## Calibration (temperature scaling)\n\n";
  if (!c.fitted) return md + "Skipped: " + c.held_out + ". model.pt is not calibrated.\n";
  md += fmt::format(
      "T = {:.4f}, fitted on {} ({} images) to minimise the NLL of softmax(logits / T); "
      "model.pt's classification layer is divided by T (`tlkit_temperature` in the file), so its "
      "logits are calibrated and its accuracy unchanged. ECE: 15 equal-width confidence bins.\n\n"
      "| data | images | NLL before | NLL after | ECE before | ECE after |\n"
      "|---|---:|---:|---:|---:|---:|\n"
      "| held out (fitted on) | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} |\n",
      c.temperature, c.held_out, c.held.examples, c.held.examples, c.held.nll_before,
      c.held.nll_after, c.held.ece_before, c.held.ece_after);
  if (!c.eval_split.empty())
    md += fmt::format("| {} split (not used to fit) | {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} |\n",
                      c.eval_split, c.eval.examples, c.eval.nll_before, c.eval.nll_after,
                      c.eval.ece_before, c.eval.ece_after);
  md += "\nWhere this report gives the exported model's metrics, they are the calibrated model.pt's.\n";
  return md;
}

Json calibration_json(const CalibrationResult& c) {
  Json j = Json::object();
  j["mode"] = c.mode;
  j["fitted"] = c.fitted;
  j["temperature"] = c.temperature;
  j["held_out"] = c.held_out;
  j["at_bound"] = c.at_bound;
  if (!c.fitted) return j;
  j["ece_bins"] = train::kCalibrationBins;
  const auto scores = [](const CalibrationScores& s) {
    Json out = Json::object();
    out["examples"] = s.examples;
    out["nll_before"] = s.nll_before;
    out["nll_after"] = s.nll_after;
    out["ece_before"] = s.ece_before;
    out["ece_after"] = s.ece_after;
    return out;
  };
  j["held_out_metrics"] = scores(c.held);
  if (!c.eval_split.empty()) {
    auto eval = scores(c.eval);
    eval["split"] = c.eval_split;
    j["eval_metrics"] = eval;
  }
  return j;
}

}  // namespace tlkit::pipeline::detail
