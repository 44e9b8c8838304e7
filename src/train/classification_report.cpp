#include <tlkit/train/classification_report.h>

#include <algorithm>
#include <sstream>

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>

namespace tlkit::train {
namespace {

std::string class_name(const std::vector<std::string>& names, size_t c) {
  return c < names.size() ? names[c] : std::to_string(c);
}

}  // namespace

Json evaluation_json(const Evaluation& evaluation, const std::vector<std::string>& class_names) {
  Json json = Json::object();
  json["examples"] = evaluation.examples;
  json["accuracy"] = evaluation.accuracy;
  json["top" + std::to_string(evaluation.top_k)] = evaluation.top_k_accuracy;
  json["top_k"] = evaluation.top_k;
  json["macro_f1"] = evaluation.macro_f1();
  json["balanced_accuracy"] = evaluation.balanced_accuracy();
  json["nll"] = evaluation.loss;
  json["ece"] = evaluation.expected_calibration_error();
  json["ece_bins"] = kCalibrationBins;
  Json per_class = Json::array();
  const auto scores = evaluation.per_class();
  for (size_t c = 0; c < scores.size(); ++c) {
    Json item = Json::object();
    item["name"] = class_name(class_names, c);
    item["precision"] = scores[c].precision;
    item["recall"] = scores[c].recall;
    item["f1"] = scores[c].f1;
    item["support"] = scores[c].support;
    per_class.push_back(item);
  }
  json["per_class"] = per_class;
  Json confusion = Json::array();
  if (evaluation.confusion.defined()) {
    const auto m = evaluation.confusion.to(at::kCPU, at::kLong).contiguous();
    for (std::int64_t i = 0; i < m.size(0); ++i) {
      const auto row = m[i];
      confusion.push_back(
          Json(std::vector<std::int64_t>(row.data_ptr<std::int64_t>(),
                                         row.data_ptr<std::int64_t>() + row.numel())));
    }
  }
  json["confusion"] = confusion;
  return json;
}

std::string format_summary(const Evaluation& evaluation) {
  return fmt::format("top-{} {:.2f}%  macro F1 {:.4f}  balanced accuracy {:.2f}%  NLL {:.4f}  "
                     "ECE {:.4f}",
                     evaluation.top_k, 100 * evaluation.top_k_accuracy, evaluation.macro_f1(),
                     100 * evaluation.balanced_accuracy(), evaluation.loss,
                     evaluation.expected_calibration_error());
}

std::string format_per_class(const Evaluation& evaluation,
                             const std::vector<std::string>& class_names) {
  const auto scores = evaluation.per_class();
  size_t width = 5;
  for (size_t c = 0; c < scores.size(); ++c)
    width = std::max(width, class_name(class_names, c).size());
  std::string out = fmt::format("  {:<{}}  {:>9}  {:>9}  {:>7}  {:>7}\n", "class", width,
                                "precision", "recall", "F1", "images");
  for (size_t c = 0; c < scores.size(); ++c)
    out += fmt::format("  {:<{}}  {:>8.2f}%  {:>8.2f}%  {:>7.4f}  {:>7}\n",
                       class_name(class_names, c), width, 100 * scores[c].precision,
                       100 * scores[c].recall, scores[c].f1, scores[c].support);
  return out;
}

std::string format_markdown(const Evaluation& evaluation,
                            const std::vector<std::string>& class_names) {
  std::ostringstream out;
  out << fmt::format(
      "- accuracy (top-1) {:.2f}%, top-{} {:.2f}%\n- macro F1 {:.4f}, balanced accuracy "
      "{:.2f}%\n- NLL {:.4f}, expected calibration error {:.4f} ({} equal-width bins)\n- {} "
      "images\n\n",
      100 * evaluation.accuracy, evaluation.top_k, 100 * evaluation.top_k_accuracy,
      evaluation.macro_f1(), 100 * evaluation.balanced_accuracy(), evaluation.loss,
      evaluation.expected_calibration_error(), kCalibrationBins, evaluation.examples);
  out << "| class | precision | recall | F1 | images |\n|---|---:|---:|---:|---:|\n";
  const auto scores = evaluation.per_class();
  for (size_t c = 0; c < scores.size(); ++c)
    out << fmt::format("| {} | {:.2f}% | {:.2f}% | {:.4f} | {} |\n", class_name(class_names, c),
                       100 * scores[c].precision, 100 * scores[c].recall, scores[c].f1,
                       scores[c].support);
  return out.str();
}

}  // namespace tlkit::train
