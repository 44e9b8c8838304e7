// tlkit info: a model's layers (name, type, output shape, parameters, trainable?) and the
// param groups / learning rates / frozen layers that the transfer options would give.

#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/train/flops.h>
#include <tlkit/train/network.h>

#include <spdlog/fmt/fmt.h>

#include "command.h"
#include "run_options.h"

namespace {

using namespace tlkit;

const char* const kExample =
    "tlkit info --model models/vgg16.pt --unfreeze-from features.24 --lr 1e-3 --lr-decay 0.5";

std::string shape_text(const std::vector<std::int64_t>& shape) {
  if (shape.empty()) return "?";
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "x" : "") + std::to_string(shape[i]);
  return text;
}

std::string join_first(const std::vector<std::string>& items, size_t max_items) {
  std::string text;
  for (size_t i = 0; i < items.size() && i < max_items; ++i) text += (i ? ", " : "") + items[i];
  if (items.size() > max_items) text += ", ... (" + std::to_string(items.size()) + ")";
  return text;
}

std::string lr_text(double lr) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3g", lr);
  return buffer;
}

std::string numbers_text(const std::vector<double>& values) {
  std::vector<std::string> texts;
  for (const double v : values) texts.push_back(lr_text(v));
  return join_first(texts, values.size());
}

void print_header(const model::Classifier& model, std::ostream& out) {
  const auto& md = model.metadata();
  out << "model        " << model.path().string() << "\n"
      << "architecture " << md.architecture << (md.present ? "" : " (no tlkit metadata)") << "\n"
      << "weights      " << md.weights << "\n"
      << "input        " << model.input_channels() << "x" << md.input_size << "x" << md.input_size
      << "  (preprocessing: resize " << md.resize << ", centre crop " << md.crop << ", mean "
      << numbers_text(md.mean) << ", std " << numbers_text(md.std) << ")\n"
      << "classes      " << model.num_classes() << ": " << join_first(model.class_names(), 6)
      << "\n"
      << "head         " << model.find_head()
      << "   (features for extraction: " << model.penultimate_layer() << ")\n"
      << "parameters   " << model.parameter_count() << " (" << model.trainable_parameter_count()
      << " trainable)\n";
  if (md.random_init()) {
    out << "\n*** WARNING: this model has RANDOM weights (" << md.weights << ").\n"
        << "*** It is NOT pretrained: transfer learning from it learns nothing useful.\n"
        << "*** Get pretrained weights as models/README.md explains.\n";
  }
}

// Per layer: the lr of its parameters ("frozen" when none is in a group, "mixed" when they differ).
std::map<std::string, std::string> lr_by_layer(const std::vector<model::Layer>& layers,
                                               const std::vector<model::ParamGroupSpec>& groups) {
  std::map<std::string, double> lr_of_param;
  for (const auto& g : groups) {
    for (const auto& name : g.param_names) lr_of_param[name] = g.lr;
  }
  std::map<std::string, std::string> out;
  for (const auto& layer : layers) {
    if (!layer.has_params()) continue;
    std::string text = "frozen";
    for (const auto& [name, lr] : lr_of_param) {
      if (name.rfind(layer.name + ".", 0) != 0) continue;
      const std::string this_lr = lr_text(lr);
      text = (text == "frozen" || text == this_lr) ? this_lr : "mixed";
    }
    out[layer.name] = text;
  }
  return out;
}

void print_layers(const model::Classifier& model, const std::vector<model::ParamGroupSpec>& groups,
                  std::ostream& out) {
  const auto layers = model.layers();
  const auto lrs = lr_by_layer(layers, groups);
  const std::string head = model.find_head();
  char line[256];
  std::snprintf(line, sizeof(line), "%4s  %-22s %-20s %-16s %12s  %-9s %s\n", "#", "layer", "type",
                "output", "params", "trainable", "lr");
  out << "\n" << line;
  for (const auto& layer : layers) {
    const char* trainable = !layer.has_params()      ? "-"
                            : layer.trainable()      ? "yes"
                            : layer.trainable_params ? "partly"
                                                     : "no";
    const auto lr = lrs.count(layer.name) ? lrs.at(layer.name) : "-";
    std::snprintf(line, sizeof(line), "%4zu  %-22s %-20s %-16s %12lld  %-9s %s%s\n", layer.index,
                  layer.name.c_str(), layer.type.c_str(), shape_text(layer.output_shape).c_str(),
                  static_cast<long long>(layer.params), trainable, lr.c_str(),
                  layer.name == head ? "   <- head" : "");
    out << line;
  }
  if (!model.walk_matches_forward()) {
    out << "(output shapes unknown: running the layers in order does not reproduce this model's "
           "forward())\n";
  }
}

void print_groups(const std::vector<model::ParamGroupSpec>& groups, std::ostream& out) {
  out << "\nparam groups (" << groups.size() << "):\n";
  for (const auto& g : groups) {
    std::int64_t count = 0;
    for (const auto& p : g.params) count += p.numel();
    out << "  lr " << lr_text(g.lr) << "  " << g.name << "  (" << g.params.size() << " tensors, "
        << count << " parameters)\n";
  }
  if (groups.empty()) out << "  none: every layer is frozen\n";
}

int run(int argc, char** argv) {
  cxxopts::Options options("tlkit info",
                           "Layers, output shapes, parameters and the transfer setup of a model");
  options.add_options()("model", "TorchScript model file (scripts/export_vgg16.py)",
                        cxxopts::value<std::string>())(
      "head", "The classification layer (default: the model's, e.g. classifier.6)",
      cxxopts::value<std::string>())("num-classes",
                                     "Show the model with a new head of this many classes",
                                     cxxopts::value<std::int64_t>())(
      "unfreeze-from", "Train layers from this one up; freeze the ones below",
      cxxopts::value<std::string>())("lr-rules",
                                     "Per-parameter learning rates, REGEX=LR,... (0 freezes), e.g. "
                                     "'features.*=0,classifier.*=1e-3'",
                                     cxxopts::value<std::string>())(
      "lr",
      "Base learning rate (the top layer's with --lr-decay; unmatched parameters' with --lr-rules)",
      cxxopts::value<double>()->default_value("1e-3"))(
      "lr-decay", "Multiply the lr by this for each parametrised layer further from the top",
      cxxopts::value<double>())(
      "lr-floor",
      "With --lr-decay: freeze the layers whose lr would be under this fraction of the top's "
      "(as finetune does)",
      cxxopts::value<double>()->default_value(
          lr_text(pipeline::RunConfig::defaults("finetune").lr_floor)));
  cli::add_preprocess_options(options);
  cli::add_common_options(options);
  cxxopts::ParseResult args;
  if (!cli::parse(options, argc, argv, kExample, args)) return cli::kOk;
  cli::apply_common(args);
  cli::require(args, {"model"});
  pipeline::Preprocessing preprocessing;
  auto model = pipeline::load_model(args["model"].as<std::string>(), cli::preprocess_options(args),
                                    c10::kCPU, &preprocessing);
  if (args.count("head")) model.set_head(args["head"].as<std::string>());
  if (args.count("num-classes")) model.replace_head(args["num-classes"].as<std::int64_t>());
  if (args.count("unfreeze-from")) model.unfreeze_from(args["unfreeze-from"].as<std::string>());
  const double lr = args["lr"].as<double>();
  std::vector<model::ParamGroupSpec> groups;
  if (args.count("lr-rules")) {
    groups = model::param_groups_from_rules(
        model, model::parse_lr_rules(args["lr-rules"].as<std::string>()), lr);
  } else if (args.count("lr-decay")) {
    groups = model::param_groups_by_depth(model, lr, args["lr-decay"].as<double>(), "",
                                          args["lr-floor"].as<double>());
  } else {
    groups = model::single_param_group(model, lr);
  }
  print_header(model, std::cout);
  std::cout << "preprocessing " << preprocessing.describe() << "\n";
  {
    train::ScriptNetwork network(model.module());
    const auto size = preprocessing.input_size;
    const double flops = train::forward_flops_per_example(
        network, torch::zeros({1, model.input_channels(), size, size}));
    std::cout << fmt::format("compute      {:.3g} GFLOP per {}x{} image forward (a training step: "
                             "about 3x that)\n",
                             flops / 1e9, size, size);
  }
  print_layers(model, groups, std::cout);
  print_groups(groups, std::cout);
  if (model.metadata().random_init())
    logger()->warn("'{}' has random weights: NOT pretrained", model.path().string());
  return cli::kOk;
}

}  // namespace

TLKIT_REGISTER_COMMAND("info",
                       "layers, output shapes, parameters, head and frozen/lr status of a model",
                       run);
