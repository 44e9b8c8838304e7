#include <tlkit/model/onnx_export.h>

#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/script.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/json.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/temperature.h>
#include <tlkit/version.h>

#include "onnx_builder.h"

namespace tlkit::model {
namespace {

constexpr std::int64_t kOpset = 13;
constexpr std::int64_t kIrVersion = 7;  // the IR version of opset 13

// The classification layer's name, or "" for a model without a Linear layer (which ONNX export
// takes as it is).
std::string head_name(const Classifier& model) {
  try {
    return model.find_head();
  } catch (const Error&) {
    return "";
  }
}

std::vector<std::pair<std::string, std::string>> metadata_props(const Classifier& model) {
  const auto& md = model.metadata();
  auto names = model.class_names();
  if (names.empty())
    for (std::int64_t i = 0; i < model.num_classes(); ++i)
      names.push_back("class_" + std::to_string(i));
  const auto json = [](const Json& value) { return value.dump(); };
  return {
      {"tlkit_format", "1"},
      {"tlkit_class_names", json(Json(names))},
      {"tlkit_input_size", std::to_string(md.crop)},
      {"tlkit_resize", std::to_string(md.resize)},
      {"tlkit_crop", std::to_string(md.crop)},
      {"tlkit_mean", json(Json(md.mean))},
      {"tlkit_std", json(Json(md.std))},
      {"tlkit_pixel_scale", "1/255"},
      {"tlkit_channel_order", model.input_channels() == 1 ? "grey" : "RGB"},
      {"tlkit_output", "logits"},
      {"tlkit_architecture", md.architecture},
      {"tlkit_weights", md.weights},
      {"tlkit_head", head_name(model)},
      // The logits are already divided by it (model/temperature.h): 1 = not calibrated.
      {"tlkit_temperature", json(Json(stored_temperature(model)))},
  };
}

// The forward graph with the weights as constants, in eval mode; the model's mode is restored.
torch::jit::Module frozen(Classifier& model) {
  const bool was_training = model.is_training();
  model.train(false);
  try {
    auto result = torch::jit::freeze_module(model.module());
    model.train(was_training);
    return result;
  } catch (const c10::Error& e) {
    model.train(was_training);
    fail("cannot export to ONNX: freezing the model failed: ", e.what_without_backtrace());
  }
}

}  // namespace

std::string onnx_model_bytes(Classifier& model, OnnxExportInfo* info) {
  TLKIT_CHECK(model.device().is_cpu(), "ONNX export runs on the CPU; move the model there first");
  const auto module = frozen(model);
  const auto size = model.metadata().crop;
  const auto channels = model.input_channels();
  onnx::GraphBuilder builder;
  {
    torch::NoGradGuard no_grad;
    // Any batch of the model's size gives the same graph; this one leaves the random generator
    // as it was.
    const auto example =
        at::sin(at::arange(channels * size * size, at::kFloat)).reshape({1, channels, size, size});
    builder.run(*module.get_method("forward").graph(), module._ivalue(), example);
  }
  const auto classes = builder.output_shape();
  TLKIT_CHECK(classes.size() == 2, "cannot export to ONNX: the model's output has shape [",
              classes.size(), " dims], not [batch, classes]");
  auto& parts = builder.parts();
  parts.name = model.metadata().architecture;
  parts.inputs.push_back(onnx::float_value_info("input", {-1, channels, size, size}));
  parts.outputs.push_back(onnx::float_value_info("logits", {-1, classes[1]}));
  parts.doc = "input: float [batch, " + std::to_string(channels) + ", " + std::to_string(size) +
              ", " + std::to_string(size) + "], pixels / 255 normalised by tlkit_mean and " +
              "tlkit_std; output: logits [batch, classes] (softmax for probabilities)";

  onnx::ModelParts model_parts;
  model_parts.ir_version = kIrVersion;
  model_parts.opset = kOpset;
  model_parts.producer_name = "tlkit";
  model_parts.producer_version = TLKIT_VERSION_STRING;
  model_parts.metadata = metadata_props(model);
  const auto node_count = parts.nodes.size();
  model_parts.graph = onnx::graph(parts);
  auto bytes = onnx::model(model_parts);
  if (info) {
    info->opset = kOpset;
    info->input_size = size;
    info->node_count = node_count;
    info->op_types.assign(builder.op_types().begin(), builder.op_types().end());
    info->bytes = bytes.size();
  }
  return bytes;
}

OnnxExportInfo export_onnx(Classifier& model, const std::filesystem::path& path) {
  OnnxExportInfo info;
  const auto bytes = onnx_model_bytes(model, &info);
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
  std::string ops;
  for (const auto& op : info.op_types) ops += (ops.empty() ? "" : ", ") + op;
  logger()->info("wrote ONNX opset {} ({} nodes: {}; input {}x{}, {} classes) to {}", info.opset,
                 info.node_count, ops, info.input_size, info.input_size, model.num_classes(),
                 path.string());
  return info;
}

}  // namespace tlkit::model
