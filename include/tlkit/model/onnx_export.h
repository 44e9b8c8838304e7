#pragma once
// Export of a classifier as an ONNX file (opset 13) that runs outside LibTorch, e.g. in OpenCV's
// DNN module (cv::dnn::readNetFromONNX) or ONNX Runtime:
//   input  "input"  float [batch, C, S, S], normalised like the metadata's mean/std
//   output "logits" float [batch, classes] (apply softmax for probabilities)
// The model's forward graph is frozen in eval mode (weights become constants, Dropout is the
// identity, BatchNorm uses its running statistics) and walked op by op on an example batch at the
// model's input size S; each aten op is mapped to ONNX operators. Python-level values (shapes,
// list arguments, branches on them) are evaluated during the walk, so the file is fixed to the
// input size S (the batch stays free). Supported: 2-D convolution, ReLU / ReLU6 / hardtanh,
// max / average pooling, adaptive average pooling where the output divides the input, mean over
// H and W, flatten from dim 1, linear / addmm / mm, dropout, batch norm, add / sub / mul / div,
// sigmoid, hardsigmoid, hardswish, SiLU. Any other op is refused by name (tlkit::Error).
//
// The metadata travels in ModelProto.metadata_props: tlkit_class_names (a JSON array),
// tlkit_input_size, tlkit_resize, tlkit_crop, tlkit_mean / tlkit_std (JSON arrays, applied to
// pixels scaled to [0, 1]), tlkit_channel_order ("RGB", or "grey"), tlkit_architecture,
// tlkit_weights, tlkit_head, tlkit_output ("logits"). The protobuf is written directly (no
// libonnx), atomically.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <tlkit/model/classifier.h>

namespace tlkit::model {

struct OnnxExportInfo {
  std::int64_t opset = 0;
  std::int64_t input_size = 0;
  size_t node_count = 0;
  std::vector<std::string> op_types;  // the ONNX operators used, sorted
  size_t bytes = 0;
};

// The serialised ONNX ModelProto of `model` (the model's train/eval mode is left as it was).
std::string onnx_model_bytes(Classifier& model, OnnxExportInfo* info = nullptr);

// Writes onnx_model_bytes(model) to `path` atomically.
OnnxExportInfo export_onnx(Classifier& model, const std::filesystem::path& path);

}  // namespace tlkit::model
