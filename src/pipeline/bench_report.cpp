// The result files of tlkit bench: results.csv / results.json (every run), report.md (tables per
// optimizer x schedule, lr sensitivity) and PNG plots (curves with a +-std band, lr sensitivity,
// performance profile).
#include "bench_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/csv.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/plot.h>
#include <tlkit/core/strings.h>

namespace tlkit::pipeline::detail {
namespace {

namespace fs = std::filesystem;

struct Stats {
  double mean = NAN, std = NAN;
  size_t n = 0;
};

Stats stats(const std::vector<double>& values) {
  Stats s;
  std::vector<double> v;
  for (double x : values) {
    if (std::isfinite(x)) v.push_back(x);
  }
  s.n = v.size();
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  double sq = 0;
  for (double x : v) sq += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : 0;
  return s;
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string fmt(const char* format, double v) {
  char text[64];
  std::snprintf(text, sizeof(text), format, v);
  return text;
}

std::string pct(const Stats& s) {
  if (s.n == 0) return "—";
  return fmt("%.2f", 100 * s.mean) + " ± " + fmt("%.2f", 100 * s.std);
}

std::string lr_text(double lr) { return fmt("%.3g", lr); }

std::string file_part(const std::string& text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string num(double v) { return std::isfinite(v) ? fmt("%.6g", v) : std::string(); }

// The final and tuning runs of one optimizer x schedule.
struct Group {
  std::string optimizer, schedule;
  double lr = 0;
  std::vector<const BenchRun*> finals, tunes;
  std::string key() const { return optimizer + "/" + schedule; }
};

std::vector<Group> groups_of(const BenchConfig& config, const BenchSummary& summary) {
  std::vector<Group> groups;
  for (const auto& opt : config.optimizers) {
    for (const auto& schedule : config.schedules) {
      Group g{
          opt,
          schedule,
          summary.tuned.count(opt + "/" + schedule) ? summary.tuned.at(opt + "/" + schedule) : 0,
          {},
          {}};
      for (const auto& run : summary.runs) {
        if (run.optimizer != opt || run.schedule != schedule) continue;
        (run.phase == "final" ? g.finals : g.tunes).push_back(&run);
      }
      groups.push_back(std::move(g));
    }
  }
  return groups;
}

template <typename F>
std::vector<double> collect(const std::vector<const BenchRun*>& runs, F field) {
  std::vector<double> out;
  for (const auto* r : runs) out.push_back(field(*r));
  return out;
}

// Mean and std per epoch of a curve over runs (runs that stopped early contribute what they have).
void curve_stats(const std::vector<const BenchRun*>& runs, std::vector<double> BenchRun::*curve,
                 std::vector<double>& x, std::vector<double>& mean, std::vector<double>& lower,
                 std::vector<double>& upper) {
  size_t epochs = 0;
  for (const auto* r : runs) epochs = std::max(epochs, ((*r).*curve).size());
  x.clear();
  mean.clear();
  lower.clear();
  upper.clear();
  for (size_t e = 0; e < epochs; ++e) {
    std::vector<double> values;
    for (const auto* r : runs) {
      const auto& c = (*r).*curve;
      if (e < c.size()) values.push_back(c[e]);
    }
    const auto s = stats(values);
    x.push_back(static_cast<double>(e + 1));
    mean.push_back(s.mean);
    lower.push_back(s.mean - s.std);
    upper.push_back(s.mean + s.std);
  }
}

void write_csv(const BenchReportInput& in, const BenchSummary& summary) {
  std::ostringstream csv;
  csv << "id,phase,optimizer,schedule,lr,seed,diverged,diverged_at,initial_loss,epochs_run,steps,"
         "final_val_acc,best_val_acc,final_val_loss,final_test_acc,best_test_acc,best_test_epoch,"
         "target,target_seconds,target_steps,target_epoch,train_seconds,optimizer_seconds,"
         "optimizer_share,allreduce_seconds,eval_seconds,wall_seconds,processes,cpu,cores,threads,"
         "device,libtorch,tlkit\n";
  const auto& env = in.environment;
  const std::string machine =
      csv_field(env.at("cpu").as_string()) + "," + std::to_string(env.at("cores").as_int()) + "," +
      std::to_string(env.at("threads").as_int()) + "," + env.at("device").as_string() + "," +
      env.at("libtorch").as_string() + "," + env.at("tlkit").as_string();
  const auto processes = env.contains("processes") ? env.at("processes").as_int() : 1;
  for (const auto& r : summary.runs) {
    const double share = r.train_seconds > 0 ? r.optimizer_seconds / r.train_seconds : NAN;
    csv << r.id << "," << r.phase << "," << csv_field(r.optimizer) << "," << csv_field(r.schedule)
        << "," << num(r.lr) << "," << r.seed << "," << (r.diverged ? 1 : 0) << ","
        << csv_field(r.diverged_at) << "," << num(r.initial_loss) << "," << r.epochs_run << ","
        << r.steps << "," << num(r.final_val_acc) << "," << num(r.best_val_acc) << ","
        << num(r.final_val_loss) << "," << (r.final_test_acc >= 0 ? num(r.final_test_acc) : "")
        << "," << (r.best_test_acc >= 0 ? num(r.best_test_acc) : "") << ","
        << (r.best_test_acc >= 0 ? std::to_string(r.best_test_epoch) : "") << "," << num(in.target)
        << "," << (r.target_seconds >= 0 ? num(r.target_seconds) : "") << ","
        << (r.target_steps >= 0 ? std::to_string(r.target_steps) : "") << ","
        << (r.target_epoch >= 0 ? std::to_string(r.target_epoch) : "") << ","
        << num(r.train_seconds) << "," << num(r.optimizer_seconds) << "," << num(share) << ","
        << num(r.allreduce_seconds) << "," << num(r.eval_seconds) << "," << num(r.wall_seconds)
        << "," << processes << "," << machine << "\n";
  }
  write_file_atomic(in.config.out / "results.csv", csv.str());
}

void write_json(const BenchReportInput& in, const BenchSummary& summary) {
  Json j = Json::object();
  j["problem"] = in.problem;
  j["config"] = in.config.to_json();
  j["environment"] = in.environment;
  j["target"] = in.target;
  Json tuned = Json::object();
  for (const auto& [key, lr] : summary.tuned) tuned[key] = lr;
  j["tuned_lr"] = tuned;
  j["best"] = summary.best;
  Json runs = Json::array();
  for (const auto& r : summary.runs) runs.push_back(r.to_json());
  j["runs"] = runs;
  write_file_atomic(in.config.out / "results.json", j.dump(1));
}

#if defined(TLKIT_WITH_OPENCV)
std::vector<std::string> write_plots(const BenchReportInput& in, const std::vector<Group>& groups) {
  std::vector<std::string> files;
  const auto& out = in.config.out;
  auto try_plot = [&](const std::string& file, const std::vector<PlotSeries>& series,
                      const PlotOptions& options) {
    if (series.empty()) return;
    try {
      write_line_plot(out / file, series, options);
      files.push_back(file);
    } catch (const Error& e) {
      logger()->warn("plot {} not written: {}", file, e.what());
    }
  };
  for (const auto& schedule : in.config.schedules) {
    std::vector<PlotSeries> loss, acc, sensitivity;
    for (const auto& g : groups) {
      if (g.schedule != schedule) continue;
      PlotSeries s{g.optimizer, {}, {}, {}, {}};
      curve_stats(g.finals, &BenchRun::train_loss, s.x, s.y, s.lower, s.upper);
      loss.push_back(s);
      curve_stats(g.finals, &BenchRun::test_acc, s.x, s.y, s.lower, s.upper);
      acc.push_back(s);
      std::map<double, std::vector<double>> by_lr;
      for (const auto* r : g.tunes) by_lr[r->lr].push_back(r->diverged ? 0.0 : r->final_val_acc);
      PlotSeries lr_series{g.optimizer, {}, {}, {}, {}};
      for (const auto& [lr, values] : by_lr) {
        lr_series.x.push_back(lr);
        lr_series.y.push_back(stats(values).mean);
      }
      if (!lr_series.x.empty()) sensitivity.push_back(lr_series);
    }
    const auto part = file_part(schedule);
    try_plot("train_loss_" + part + ".png", loss,
             PlotOptions{}
                 .with_title(in.problem + ", " + schedule + ": training loss (mean +- std)")
                 .with_labels("epoch", "training loss")
                 .with_log(false, true));
    try_plot("test_acc_" + part + ".png", acc,
             PlotOptions{}
                 .with_title(in.problem + ", " + schedule + ": test accuracy (mean +- std)")
                 .with_labels("epoch", "test accuracy"));
    try_plot("lr_sensitivity_" + part + ".png", sensitivity,
             PlotOptions{}
                 .with_title(in.problem + ", " + schedule + ": final validation accuracy vs lr")
                 .with_labels("learning rate", "validation accuracy")
                 .with_log(true, false));
  }
  // Performance profile (Dolan & More 2002): each schedule is a task, each optimizer a solver;
  // the cost is the median training time to the validation target (never reached = infinite), or
  // the test error when there is no target or some schedule has no optimizer that reached it.
  if (in.config.schedules.size() >= 2) {
    // optimizer -> schedule -> cost, by time to target and by test error.
    std::map<std::string, std::map<std::string, double>> by_time, by_error;
    for (const auto& g : groups) {
      double time = INFINITY, error = INFINITY;
      std::vector<double> times;
      bool all = !g.finals.empty();
      for (const auto* r : g.finals) {
        if (r->target_seconds < 0) all = false;
        times.push_back(r->target_seconds);
      }
      if (all) time = median(times);
      const auto s = stats(collect(g.finals, [](const BenchRun& r) { return r.final_test_acc; }));
      if (s.n > 0) error = 1 - s.mean;
      by_time[g.optimizer][g.schedule] = time;
      by_error[g.optimizer][g.schedule] = error;
    }
    // Time to target only when every schedule has an optimizer that reached it.
    bool timed = in.target > 0;
    for (const auto& schedule : in.config.schedules) {
      bool reached = false;
      for (const auto& opt : in.config.optimizers)
        reached = reached || std::isfinite(by_time[opt][schedule]);
      timed = timed && reached;
    }
    auto& cost = timed ? by_time : by_error;
    std::map<std::string, std::vector<double>> ratios;
    double highest = 1;
    for (const auto& schedule : in.config.schedules) {
      double best = INFINITY;
      for (const auto& opt : in.config.optimizers) best = std::min(best, cost[opt][schedule]);
      for (const auto& opt : in.config.optimizers) {
        const double r = std::isfinite(best) && best > 0 ? cost[opt][schedule] / best : INFINITY;
        ratios[opt].push_back(r);
        if (std::isfinite(r)) highest = std::max(highest, r);
      }
    }
    std::vector<PlotSeries> profile;
    for (const auto& opt : in.config.optimizers) {
      PlotSeries s{opt, {}, {}, {}, {}};
      for (int k = 0; k <= 100; ++k) {
        const double tau = std::pow(highest * 1.2, k / 100.0);
        double solved = 0;
        for (double r : ratios[opt]) solved += r <= tau ? 1 : 0;
        s.x.push_back(tau);
        s.y.push_back(solved / static_cast<double>(ratios[opt].size()));
      }
      profile.push_back(s);
    }
    try_plot("performance_profile.png", profile,
             PlotOptions{}
                 .with_title(in.problem + ": performance profile over schedules (" +
                             (timed ? "time to target" : "test error") + ")")
                 .with_labels("tau (cost / best cost)", "fraction of schedules within tau")
                 .with_log(true, false));
  }
  return files;
}
#endif

}  // namespace

void write_bench_results(const BenchReportInput& in, BenchSummary& summary) {
  const auto groups = groups_of(in.config, summary);
  // The best configuration: the highest mean final test accuracy.
  const Group* best = nullptr;
  double best_mean = -1;
  for (const auto& g : groups) {
    const auto s = stats(collect(g.finals, [](const BenchRun& r) { return r.final_test_acc; }));
    if (s.n > 0 && s.mean > best_mean) {
      best_mean = s.mean;
      best = &g;
    }
  }
  if (best) {
    const auto s = stats(collect(best->finals, [](const BenchRun& r) { return r.final_test_acc; }));
    summary.best = best->optimizer + " + " + best->schedule + " (lr " + lr_text(best->lr) +
                   "): final test accuracy " + pct(s) + "% over " + std::to_string(s.n) + " seeds";
  }
  write_csv(in, summary);
  write_json(in, summary);

  const auto& c = in.config;
  const auto& env = in.environment;
  std::ostringstream md;
  md << "# tlkit bench: " << in.problem << "\n\n";
  md << "- data: `" << c.data << "`"
     << (c.limit ? ", at most " + std::to_string(c.limit) + " images per split" : std::string())
     << ", " << in.num_classes << " classes; validation split " << c.val_split
     << " of the training data (the lr is chosen on it; test is only reported)\n";
  md << "- " << c.epochs << " epochs per final run (" << c.tune_epochs << " per tuning run), "
     << c.seeds << " seeds per optimizer x schedule, " << c.tune_seeds
     << " per tuning point; lr grid `" << c.lr_grid << "` (extended past an edge up to "
     << c.max_extensions << " times)";
  if (!c.lr.empty()) {
    std::vector<std::string> fixed;
    for (const auto& [name, lr] : c.lr) fixed.push_back(name + "=" + lr_text(lr));
    md << "; fixed lr (not tuned): " << join(fixed, ", ");
  }
  md << "\n- target: validation accuracy "
     << (in.target > 0 ? fmt("%.3g", in.target) : std::string("none")) << "\n";
  md << "- machine: " << env.at("cpu").as_string() << ", " << env.at("cores").as_int() << " cores, "
     << env.at("threads").as_int() << " threads, device " << env.at("device").as_string()
     << ", BLAS "
     << (env.contains("blas") && !env.at("blas").as_string().empty() ? env.at("blas").as_string()
                                                                     : std::string("built in"))
     << "; LibTorch " << env.at("libtorch").as_string() << ", tlkit " << env.at("tlkit").as_string()
     << "\n\n";
  if (best) md << "**Best configuration:** " << summary.best << ".\n\n";

  md << "## Final runs (test split, mean ± std over seeds)\n\n";
  md << "| optimizer | schedule | lr (tuned) | final test acc % | best test acc % | epoch of best |"
        " time to target (s, median) | steps to target | train time / run (s) | optimizer step "
        "share | diverged |\n";
  md << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& g : groups) {
    const auto final_acc =
        stats(collect(g.finals, [](const BenchRun& r) { return r.final_test_acc; }));
    const auto best_acc =
        stats(collect(g.finals, [](const BenchRun& r) { return r.best_test_acc; }));
    const auto best_epoch =
        stats(collect(g.finals, [](const BenchRun& r) { return double(r.best_test_epoch); }));
    std::vector<double> times, steps;
    size_t diverged = 0;
    double train = 0, optimizer = 0;
    for (const auto* r : g.finals) {
      if (r->target_seconds >= 0) {
        times.push_back(r->target_seconds);
        steps.push_back(static_cast<double>(r->target_steps));
      }
      diverged += r->diverged ? 1 : 0;
      train += r->train_seconds;
      optimizer += r->optimizer_seconds;
    }
    const auto n = g.finals.size();
    std::string reached = "—", reached_steps = "—";
    if (in.target > 0 && !times.empty()) {
      reached =
          fmt("%.1f", median(times)) +
          (times.size() < n ? " (" + std::to_string(times.size()) + "/" + std::to_string(n) + ")"
                            : std::string());
      reached_steps = fmt("%.0f", median(steps));
    } else if (in.target > 0) {
      reached = "not reached";
    }
    md << "| " << g.optimizer << " | " << g.schedule << " | " << lr_text(g.lr)
       << (c.lr.count(g.optimizer) ? " (fixed)" : "") << " | " << pct(final_acc) << " | "
       << pct(best_acc) << " | " << (best_epoch.n ? fmt("%.1f", best_epoch.mean) : "—") << " | "
       << reached << " | " << reached_steps << " | "
       << (n ? fmt("%.1f", train / static_cast<double>(n)) : "—") << " | "
       << (train > 0 ? fmt("%.1f%%", 100 * optimizer / train) : "—") << " | " << diverged << "/"
       << n << " |\n";
  }

  // lr sensitivity: every lr tried, per optimizer x schedule.
  std::vector<double> lrs;
  for (const auto& g : groups) {
    for (const auto* r : g.tunes) lrs.push_back(r->lr);
  }
  std::sort(lrs.begin(), lrs.end());
  lrs.erase(std::unique(lrs.begin(), lrs.end(),
                        [](double a, double b) { return std::abs(a - b) <= 1e-12 * b; }),
            lrs.end());
  if (!lrs.empty()) {
    md << "\n## Learning-rate sensitivity (mean final validation accuracy % of the tuning runs; "
          "**bold** = chosen, div = diverged)\n\n| optimizer | schedule |";
    for (double lr : lrs) md << " " << lr_text(lr) << " |";
    md << "\n|---|---|";
    for (size_t k = 0; k < lrs.size(); ++k) md << "---|";
    md << "\n";
    for (const auto& g : groups) {
      if (g.tunes.empty()) continue;
      md << "| " << g.optimizer << " | " << g.schedule << " |";
      for (double lr : lrs) {
        std::vector<double> values;
        bool all_diverged = true;
        for (const auto* r : g.tunes) {
          if (std::abs(r->lr - lr) > 1e-12 * lr) continue;
          values.push_back(r->diverged ? 0.0 : r->final_val_acc);
          all_diverged = all_diverged && r->diverged;
        }
        std::string cell;
        if (!values.empty()) cell = all_diverged ? "div" : fmt("%.2f", 100 * stats(values).mean);
        if (!cell.empty() && std::abs(lr - g.lr) <= 1e-12 * lr) cell = "**" + cell + "**";
        md << " " << cell << " |";
      }
      md << "\n";
    }
  }

  // Equal starts: the initial validation loss of each seed, across configurations.
  std::map<std::uint64_t, std::vector<double>> initial;
  for (const auto& r : summary.runs) initial[r.seed].push_back(r.initial_loss);
  md << "\n## Equal starts\n\nInitial validation loss per seed (before the first step; ln "
     << in.num_classes << " = " << fmt("%.4f", std::log(static_cast<double>(in.num_classes)))
     << "), min / max over every optimizer x schedule x lr of that seed:\n\n";
  for (const auto& [seed, values] : initial) {
    md << "- seed " << seed << ": " << fmt("%.6f", *std::min_element(values.begin(), values.end()))
       << " / " << fmt("%.6f", *std::max_element(values.begin(), values.end())) << " ("
       << values.size() << " runs)\n";
  }
#if defined(TLKIT_WITH_OPENCV)
  const auto plots = write_plots(in, groups);
  if (!plots.empty()) {
    md << "\n## Plots\n\n";
    for (const auto& file : plots) md << "![" << file << "](" << file << ")\n\n";
  }
#endif
  md << "\n## Protocol\n\nEvery run of a seed starts from the same initial weights and sees the "
        "same batches in the same order with the same augmentation. The lr of each optimizer x "
        "schedule is chosen by the mean final validation accuracy of its tuning runs (a diverged "
        "run scores 0); the final runs use fresh seeds and report the test split, evaluated "
        "after every epoch. Times are training time with evaluation off the clock; the optimizer "
        "step share is the time in `optimizer.step()` over the training time. The training loss "
        "is the cross-entropy without the L2 term. Files: results.csv, results.json (with the "
        "per-epoch curves), runs/*.json (one per run).\n";
  summary.report = c.out / "report.md";
  write_file_atomic(summary.report, md.str());
}

}  // namespace tlkit::pipeline::detail
