#include <tlkit/model/onnx_export.h>

#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/model/classifier.h>

#include "model/onnx_fixtures.h"

namespace fs = std::filesystem;
using tlkit::model::Classifier;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::TempDir;

namespace {

bool python_onnx_available() {
  return tlkit::test::run_command("/usr/bin/python3 -c 'import onnx' 2>&1").exit_code == 0;
}

// Runs onnx.checker (full_check: with shape inference) on `file` and `extra` Python lines after
// it (`m` is the model, `meta` its metadata_props as a dict).
tlkit::test::CommandResult check_with_python_onnx(const fs::path& file, const std::string& extra,
                                                  const TempDir& dir) {
  const auto script = dir / "check.py";
  std::ofstream(script) << "import json, sys, onnx\n"
                        << "m = onnx.load(sys.argv[1])\n"
                        << "onnx.checker.check_model(m, full_check=True)\n"
                        << "meta = {p.key: p.value for p in m.metadata_props}\n"
                        << "print('ops', sorted({n.op_type for n in m.graph.node}))\n"
                        << extra << "print('checked')\n";
  return tlkit::test::run_command("/usr/bin/python3 " + quoted(script) + " " + quoted(file) +
                                  " 2>&1");
}

}  // namespace

// The VGG layout (convolution, ReLU, max pooling, adaptive average pooling, flatten, linear,
// dropout) with a replaced head: onnx.checker accepts the file, and the class names and the
// preprocessing are in metadata_props.
TEST(OnnxExport, CheckerAcceptsTinyVggWithItsMetadata) {
  if (!python_onnx_available()) GTEST_SKIP() << "python3-onnx is not installed";
  TempDir dir;
  auto model = Classifier::load(tlkit::test::tiny_model());
  torch::manual_seed(5);
  model.replace_head(4, {"apple", "pear", "plum", "fig"});
  model.train(true);
  const auto info = tlkit::model::export_onnx(model, dir / "tiny.onnx");
  EXPECT_TRUE(model.is_training()) << "export must leave the model's mode as it was";
  EXPECT_EQ(info.opset, 13);
  EXPECT_EQ(info.input_size, 16);
  const auto result = check_with_python_onnx(
      dir / "tiny.onnx",
      "assert json.loads(meta['tlkit_class_names']) == ['apple', 'pear', 'plum', 'fig'], meta\n"
      "assert meta['tlkit_input_size'] == '16' and meta['tlkit_crop'] == '16', meta\n"
      "assert json.loads(meta['tlkit_mean']) == [0.485, 0.456, 0.406], meta\n"
      "assert json.loads(meta['tlkit_std']) == [0.229, 0.224, 0.225], meta\n"
      "assert meta['tlkit_channel_order'] == 'RGB' and meta['tlkit_architecture'] == 'vgg_tiny'\n"
      "dims = lambda v: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]\n"
      "assert dims(m.graph.input[0]) == ['batch', 3, 16, 16], dims(m.graph.input[0])\n"
      "assert dims(m.graph.output[0]) == ['batch', 4], dims(m.graph.output[0])\n"
      "ops = {n.op_type for n in m.graph.node}\n"
      "assert {'Conv', 'Relu', 'MaxPool', 'AveragePool', 'Flatten', 'Gemm'} <= ops, ops\n"
      "assert 'Dropout' not in ops\n",
      dir);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "checked")) << result.output;
}

// Batch norm (vgg_cifar) and the MobileNet/EfficientNet-style ops of mixed.pt.
TEST(OnnxExport, CheckerAcceptsBatchNormAndMixedGraphs) {
  if (!python_onnx_available()) GTEST_SKIP() << "python3-onnx is not installed";
  TempDir dir;
  auto cifar = Classifier::load(
      tlkit::test::export_model_file("--arch vgg_cifar --random-init", "cifar.pt"));
  tlkit::model::export_onnx(cifar, dir / "cifar.onnx");
  auto result = check_with_python_onnx(
      dir / "cifar.onnx",
      "assert sum(n.op_type == 'BatchNormalization' for n in m.graph.node) == 6\n", dir);
  EXPECT_EQ(result.exit_code, 0) << result.output;

  auto mixed = Classifier::load(tlkit::test::onnx_fixture("mixed.pt"));
  const auto info = tlkit::model::export_onnx(mixed, dir / "mixed.onnx");
  for (const char* op : {"Add", "Mul", "Sub", "Sigmoid", "HardSigmoid", "Relu", "Resize",
                         "GlobalAveragePool", "BatchNormalization", "MaxPool", "AveragePool"})
    EXPECT_NE(std::find(info.op_types.begin(), info.op_types.end(), op), info.op_types.end()) << op;
  result = check_with_python_onnx(dir / "mixed.onnx",
                                  "assert json.loads(meta['tlkit_class_names'])[4] == 'c4'\n", dir);
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

TEST(OnnxExport, RefusesAnUnsupportedOpByName) {
  TempDir dir;
  auto model = Classifier::load(tlkit::test::onnx_fixture("unsupported.pt"));
  tlkit::test::expect_error([&] { tlkit::model::export_onnx(model, dir / "m.onnx"); },
                            "op aten::tanh");
  EXPECT_FALSE(fs::exists(dir / "m.onnx"));
}

// vgg_tiny at 20x20: the last feature map is 5x5, which no ONNX pooling brings to 2x2.
TEST(OnnxExport, RefusesAdaptivePoolingWithUnequalWindows) {
  TempDir dir;
  auto model = Classifier::load(tlkit::test::tiny_model(), {c10::kCPU, 20});
  const auto md = model.metadata();
  model.set_preprocessing(20, 20, md.mean, md.std);
  tlkit::test::expect_error([&] { tlkit::model::onnx_model_bytes(model); },
                            "op aten::adaptive_avg_pool2d");
  tlkit::test::expect_error([&] { tlkit::model::onnx_model_bytes(model); }, "from 5x5 to 2x2");
  // At 24x24 (6x6 -> 2x2, windows of 3x3) it exports.
  auto model24 = Classifier::load(tlkit::test::tiny_model(), {c10::kCPU, 24});
  model24.set_preprocessing(24, 24, md.mean, md.std);
  tlkit::model::OnnxExportInfo info;
  EXPECT_FALSE(tlkit::model::onnx_model_bytes(model24, &info).empty());
  EXPECT_EQ(info.input_size, 24);
}

TEST(OnnxExport, CommandLineWritesOnnxAndRefusesAnUnknownFormat) {
  TempDir dir;
  const auto model = quoted(tlkit::test::tiny_model());
  auto result = tlkit::test::tlkit_cli("export --model " + model + " --format tflite --out " +
                                       quoted(dir / "m.tflite"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "unknown --format 'tflite'; use onnx or torchscript"))
      << result.output;

  result = tlkit::test::tlkit_cli("export --model " + model + " --out " + quoted(dir / "m.onnx"));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "wrote ONNX opset 13")) << result.output;
  ASSERT_TRUE(fs::exists(dir / "m.onnx"));
  auto model_back = Classifier::load(tlkit::test::tiny_model());
  EXPECT_EQ(fs::file_size(dir / "m.onnx"), tlkit::model::onnx_model_bytes(model_back).size());

  result = tlkit::test::tlkit_cli("export --model " + model + " --format torchscript --out " +
                                  quoted(dir / "copy.pt"));
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(Classifier::load(dir / "copy.pt").num_classes(), 10);
}
