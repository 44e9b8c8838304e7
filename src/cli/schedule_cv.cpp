// tlkit schedule: a dry run of a learning-rate schedule. Prints the lr of each param group at each
// step, optionally writes them to CSV and plots them to PNG.

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/plot.h>
#include <tlkit/schedule.h>

#include "command.h"

namespace {

using namespace tlkit;

const char* const kExample =
    "tlkit schedule --spec restarts:T_0=10,T_mult=2 --steps 70 --groups 0.1,0.01 --csv lr.csv "
    "--plot lr.png";

// The lrs and momenta of every step.
struct Trace {
  std::vector<std::vector<double>> lr;
  std::vector<std::vector<double>> momentum;
  bool momentum_changes = false;
};

std::vector<double> parse_lrs(const std::string& text) {
  std::vector<double> lrs;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const double lr = std::strtod(item.c_str(), &end);
    TLKIT_CHECK(!item.empty() && end == item.c_str() + item.size() && std::isfinite(lr) && lr > 0,
                "--groups: '", item,
                "' is not a positive learning rate; write e.g. --groups 0.1,0.01");
    lrs.push_back(lr);
  }
  TLKIT_CHECK(!lrs.empty(), "--groups is empty; write e.g. --groups 0.1,0.01");
  return lrs;
}

std::vector<double> read_metrics(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<double> metrics;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    char* end = nullptr;
    metrics.push_back(std::strtod(line.c_str(), &end));
    TLKIT_CHECK(end != line.c_str(), "--metric-file ", path, " line ", number, ": '", line,
                "' is not a number");
  }
  return metrics;
}

// A stand-in optimizer with one tiny parameter per group (the schedule only touches the options).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& kind,
                                                        const std::vector<double>& lrs) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (double lr : lrs) {
    std::vector<at::Tensor> params = {torch::zeros({1})};
    if (kind == "adam") {
      groups.emplace_back(params, std::make_unique<torch::optim::AdamOptions>(lr));
    } else {
      groups.emplace_back(params, std::make_unique<torch::optim::SGDOptions>(
                                      torch::optim::SGDOptions(lr).momentum(0.9)));
    }
  }
  if (kind == "adam")
    return std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(lrs[0]));
  return std::make_unique<torch::optim::SGD>(groups,
                                             torch::optim::SGDOptions(lrs[0]).momentum(0.9));
}

std::vector<double> momenta(const torch::optim::Optimizer& optimizer) {
  std::vector<double> out;
  for (const auto& group : optimizer.param_groups())
    out.push_back(schedule::get_momentum(group.options()).value_or(0));
  return out;
}

// The most steps a dry run shows: ~10^7 rows of lrs fit in memory, and a longer table cannot be
// read anyway.
constexpr std::int64_t kMaxSteps = 10'000'000;

Trace run_schedule(schedule::LRScheduler& scheduler, std::int64_t steps,
                   const std::vector<double>& metrics) {
  Trace trace;
  const auto& optimizer = scheduler.optimizer();
  for (std::int64_t step = 0; step < steps; ++step) {
    if (step > 0)
      scheduler.step_with_metric(metrics.empty() ? 0.0
                                                 : metrics[static_cast<std::size_t>(step - 1)]);
    trace.lr.push_back(scheduler.get_last_lr());
    trace.momentum.push_back(momenta(optimizer));
    trace.momentum_changes =
        trace.momentum_changes || trace.momentum.back() != trace.momentum.front();
  }
  return trace;
}

std::string format_table(const Trace& trace, const char* number_format, const char* separator) {
  std::string out = "step";
  const std::size_t groups = trace.lr.front().size();
  for (std::size_t g = 0; g < groups; ++g) out += separator + ("lr_group" + std::to_string(g));
  if (trace.momentum_changes) {
    for (std::size_t g = 0; g < groups; ++g)
      out += separator + ("momentum_group" + std::to_string(g));
  }
  out += "\n";
  char cell[64];
  for (std::size_t step = 0; step < trace.lr.size(); ++step) {
    out += std::to_string(step);
    for (double lr : trace.lr[step]) {
      std::snprintf(cell, sizeof(cell), number_format, lr);
      out += separator + std::string(cell);
    }
    for (std::size_t g = 0; trace.momentum_changes && g < groups; ++g) {
      std::snprintf(cell, sizeof(cell), number_format, trace.momentum[step][g]);
      out += separator + std::string(cell);
    }
    out += "\n";
  }
  return out;
}

void plot_trace(const Trace& trace, const std::vector<double>& base_lrs, const std::string& spec,
                const std::string& path, bool log_y) {
  std::vector<PlotSeries> series(trace.lr.front().size());
  for (std::size_t g = 0; g < series.size(); ++g) {
    std::ostringstream name;
    name << "group " << g << " (base lr " << base_lrs[g] << ")";
    series[g].name = name.str();
    for (std::size_t step = 0; step < trace.lr.size(); ++step) {
      series[g].x.push_back(static_cast<double>(step));
      series[g].y.push_back(trace.lr[step][g]);
    }
  }
  write_line_plot(
      path, series,
      PlotOptions{}.with_title(spec).with_labels("step", "learning rate").with_log(false, log_y));
}

int usage_error(const std::string& message) {
  std::cerr << "tlkit schedule: " << message << " (see 'tlkit schedule --help')\n";
  return cli::kUsage;
}

cxxopts::Options make_options() {
  cxxopts::Options options(
      "tlkit schedule",
      "Dry run of a learning-rate schedule: the lr of each param group at each step");
  options.add_options()("spec",
                        "Schedule spec, NAME[:KEY=VALUE,...] or warmup:N+SPEC (names below)",
                        cxxopts::value<std::string>())(
      "steps", "Number of steps to show (step 0 = before the first step())",
      cxxopts::value<std::int64_t>()->default_value("100"))(
      "lr", "Base learning rate of a single param group",
      cxxopts::value<double>()->default_value("0.1"))(
      "groups", "Comma-separated base lrs, one per param group (instead of --lr)",
      cxxopts::value<std::string>())(
      "optimizer", "sgd (momentum 0.9) or adam: what onecycle's momentum cycling drives",
      cxxopts::value<std::string>()->default_value("sgd"))(
      "steps-per-epoch", "Scheduler steps per epoch (onecycle:epochs=E uses it)",
      cxxopts::value<std::int64_t>()->default_value("1"))(
      "csv", "Write step, lr per group (and momentum per group if it changes) to this CSV",
      cxxopts::value<std::string>())("plot", "Write a PNG plot of the lrs to this file",
                                     cxxopts::value<std::string>())(
      "log-y", "Logarithmic lr axis in the plot")(
      "metric-file", "One metric per line, fed to step(metric) (plateau needs --steps - 1 of them)",
      cxxopts::value<std::string>());
  cli::add_common_options(options);
  return options;
}

int run(int argc, char** argv) {
  auto options = make_options();
  cxxopts::ParseResult args;
  if (!cli::parse(options, argc, argv, kExample, args)) {
    std::cout << "\nSchedules (KEY=default; a step is one call of step()):\n"
              << schedule::schedule_spec_help();
    return cli::kOk;
  }
  cli::apply_common(args);
  if (!args.count("spec")) return usage_error("--spec is required, e.g. --spec cosine");
  const auto spec = args["spec"].as<std::string>();
  const auto steps = args["steps"].as<std::int64_t>();
  if (steps < 1) return usage_error("--steps must be >= 1");
  // The dry run keeps every step's lrs in memory (for the table, the CSV and the plot).
  if (steps > kMaxSteps)
    return usage_error("--steps " + std::to_string(steps) + " is over the dry run's limit of " +
                       std::to_string(kMaxSteps) +
                       " steps; show fewer steps (a schedule's shape shows at any length: "
                       "scale T_max, total_steps and the like down with it)");
  std::vector<double> lrs = {args["lr"].as<double>()};
  try {
    if (args.count("groups")) lrs = parse_lrs(args["groups"].as<std::string>());
    TLKIT_CHECK(lrs[0] > 0, "--lr must be > 0");
  } catch (const Error& e) {
    return usage_error(e.what());
  }
  const auto kind = args["optimizer"].as<std::string>();
  if (kind != "sgd" && kind != "adam")
    return usage_error("--optimizer must be sgd or adam, got '" + kind + "'");
  auto optimizer = make_optimizer(kind, lrs);
  schedule::ScheduleContext context;
  context.total_steps = steps;
  context.steps_per_epoch = args["steps-per-epoch"].as<std::int64_t>();
  std::unique_ptr<schedule::LRScheduler> scheduler;
  try {
    scheduler = schedule::make_scheduler(spec, *optimizer, context);
  } catch (const Error& e) {
    return usage_error("bad --spec '" + spec + "': " + e.what());
  }
  std::vector<double> metrics;
  if (args.count("metric-file")) metrics = read_metrics(args["metric-file"].as<std::string>());
  if (scheduler->uses_metric()) {
    TLKIT_CHECK(static_cast<std::int64_t>(metrics.size()) >= steps - 1, scheduler->name(),
                " needs a metric per step: ", "give --metric-file with at least ", steps - 1,
                " values (it has ", metrics.size(), ")");
  } else if (!metrics.empty()) {
    logger()->warn("{} does not use a metric; --metric-file is ignored", scheduler->name());
  }
  const auto trace =
      run_schedule(*scheduler, steps, scheduler->uses_metric() ? metrics : std::vector<double>{});
  std::cout << format_table(trace, "%.10g", "  ");
  if (args.count("csv"))
    write_file_atomic(args["csv"].as<std::string>(), format_table(trace, "%.17g", ","));
  if (args.count("plot"))
    plot_trace(trace, lrs, spec, args["plot"].as<std::string>(), args.count("log-y") > 0);
  return cli::kOk;
}

}  // namespace

TLKIT_REGISTER_COMMAND("schedule",
                       "dry run of a learning-rate schedule: lrs per step, CSV, PNG plot", run);
