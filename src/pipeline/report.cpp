// Run reports: results.md, summary.json, report.html and the learning-curve plot of a run folder.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/plot.h>
#include <tlkit/train/classification_report.h>

#include "calibration.h"
#include "report_html.h"
#include "run.h"

namespace tlkit::pipeline {

using detail::calibration_json;
using detail::calibration_markdown;

std::string format_results(const RunResult& result) {
  std::ostringstream out;
  out << "| model (" << (result.split.empty() ? "no test or val split" : result.split + " split")
      << ") | accuracy | loss | images |\n|---|---:|---:|---:|\n";
  for (const auto& row : result.rows) {
    char line[256];
    if (row.examples == 0) {
      std::snprintf(line, sizeof(line), "| %s%s | - | - | 0 |\n", row.name.c_str(),
                    row.exported ? " (exported)" : "");
    } else {
      std::snprintf(line, sizeof(line), "| %s%s | %.2f%% | %.4f | %lld |\n", row.name.c_str(),
                    row.exported ? " (exported)" : "", 100.0 * row.accuracy, row.loss,
                    static_cast<long long>(row.examples));
    }
    out << line;
  }
  if (!result.exported.empty())
    out << "\nExported: " << result.exported.filename().string() << " (" << result.exported_from
        << " weights: " << result.exported_because << ")\n";
  const auto exported = std::find_if(result.rows.begin(), result.rows.end(),
                                     [](const ResultRow& row) { return row.exported; });
  if (exported != result.rows.end() && exported->evaluation.confusion.defined() &&
      exported->examples > 0)
    out << "\n## The exported model on the " << result.split << " split\n\n"
        << train::format_markdown(exported->evaluation, result.classes) << result.pictures;
  out << calibration_markdown(result.calibration);
  if (!result.decisions.empty()) out << "\n" << result.decisions;
  return out.str();
}

namespace detail {
namespace {

#if defined(TLKIT_WITH_OPENCV)
void plot_curves(const std::filesystem::path& out, const std::vector<train::Metrics>& history) {
  if (history.empty()) return;
  auto series = [&](const std::string& metric, const std::string& name) {
    PlotSeries s{name, {}, {}};
    for (const auto& metrics : history) {
      if (auto value = metrics.get(metric)) {
        s.x.push_back(metrics.get("epoch").value_or(static_cast<double>(s.x.size() + 1)));
        s.y.push_back(*value);
      }
    }
    return s;
  };
  auto plot = [&](const std::string& file, const std::string& what, std::vector<PlotSeries> all) {
    std::vector<PlotSeries> present;
    for (auto& s : all)
      if (!s.x.empty()) present.push_back(std::move(s));
    if (present.empty()) return;
    write_line_plot(out / file, present,
                    PlotOptions().with_title(what + " per epoch").with_labels("epoch", what));
  };
  plot("curves_loss.png", "loss",
       {series("train_loss", "train"), series("val_loss", "val"),
        series("ema_val_loss", "val (EMA)")});
  plot(
      "curves_accuracy.png", "accuracy",
      {series("train_acc", "train"), series("val_acc", "val"), series("ema_val_acc", "val (EMA)")});
}
#endif

// Now, local time: "2026-12-31 17:05".
std::string local_time_now() {
  const auto now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[32];
  return std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M", &local) > 0 ? text : "";
}

}  // namespace

void write_report(const RunConfig& requested, const RunConfig& resolved, const RunResult& result,
                  const std::vector<train::Metrics>& history) {
  const auto& out = resolved.out;
  Json summary = Json::object();
  summary["command"] = resolved.command;
  summary["config"] = requested.to_json();   // as in config.json
  summary["resolved"] = resolved.to_json();  // with the budgets chosen for the data
  summary["split"] = result.split;
  Json rows = Json::array();
  for (const auto& row : result.rows) {
    Json item = Json::object();
    item["name"] = row.name;
    item["accuracy"] = row.accuracy;
    item["loss"] = row.loss;
    item["examples"] = row.examples;
    item["exported"] = row.exported;
    rows.push_back(item);
  }
  summary["results"] = rows;
  for (const auto& row : result.rows)
    if (row.exported && row.evaluation.confusion.defined() && row.examples > 0)
      summary["exported_metrics"] = train::evaluation_json(row.evaluation, result.classes);
  summary["exported"] = result.exported.filename().string();
  summary["exported_from"] = result.exported_from;
  summary["exported_because"] = result.exported_because;
  summary["decisions"] = result.decisions;
  summary["calibration"] = calibration_json(result.calibration);
  Json epochs = Json::array();
  for (const auto& metrics : history) {
    Json item = Json::object();
    for (const auto& [name, value] : metrics.items()) item[name] = value;
    epochs.push_back(item);
  }
  summary["history"] = epochs;
  write_file_atomic(out / "summary.json", summary.dump(2) + "\n");
  write_file_atomic(out / "results.md", format_results(result));
#if defined(TLKIT_WITH_OPENCV)
  plot_curves(out, history);
#else
  logger()->info("built without OpenCV: no learning-curve PNGs");
#endif
  // Last: the page shows the pictures that exist by now.
  write_file_atomic(out / "report.html", format_report_html(resolved, result, out, local_time_now()));
}

}  // namespace detail
}  // namespace tlkit::pipeline
