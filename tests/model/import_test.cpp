// tlkit import against torchvision 0.14: random weights saved by Python (zip, legacy and
// safetensors files; scripts/make_torchvision_weights.py), imported in C++, logits equal to
// torchvision's on the same input; every architecture's state_dict names and shapes; refusals.

#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <torch/script.h>

#include <tlkit/core/error.h>
#include <tlkit/core/json.h>
#include <tlkit/model/export.h>
#include <tlkit/model/import.h>
#include <tlkit/train/network.h>

#include "support/test_support.h"

using tlkit::model::Classifier;
using tlkit::test::TempDir;

namespace {

bool have_torchvision() {
  static const bool ok =
      tlkit::test::run_command(tlkit::test::torch_python() + " -c 'import torchvision'")
          .exit_code == 0;
  return ok;
}

tlkit::test::CommandResult generate(const std::string& args, const std::filesystem::path& out) {
  return tlkit::test::run_command(
      tlkit::test::torch_python() + " " +
      tlkit::test::quoted(tlkit::test::source_dir() / "scripts/make_torchvision_weights.py") + " " +
      args + " --out " + tlkit::test::quoted(out));
}

at::Tensor held(const std::filesystem::path& path) {
  return torch::jit::load(path.string()).attr("value").toTensor();
}

// Imports DIR/<arch>_<format>.<ext> and compares its eval logits with torchvision's.
void expect_same_logits(const std::filesystem::path& dir, const std::string& arch,
                        const std::string& format) {
  SCOPED_TRACE(arch + " from " + format);
  const auto base = dir / (arch + "_" + format);
  const auto file = base.string() + (format == "safetensors" ? ".safetensors" : ".pth");
  auto model = tlkit::model::import_torchvision(arch, file);
  model.train(false);
  const auto expected = held(base.string() + "_logits.pt");
  at::Tensor logits;
  {
    at::NoGradGuard no_grad;
    logits = model.forward(held(base.string() + "_input.pt"));
  }
  ASSERT_EQ(logits.sizes(), expected.sizes());
  const double error = (logits - expected).abs().max().item<double>();
  EXPECT_LE(error, 1e-5 * expected.abs().max().item<double>()) << "max abs error " << error;
}

class ImportTorchvision : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have_torchvision()) return;
    dir_ = new TempDir;
    const auto result = generate(
        "--size 64 --models resnet18:zip,resnet50:zip,mobilenet_v3_small:legacy,"
        "mobilenet_v3_small:safetensors,mobilenet_v3_large:zip,efficientnet_b0:zip",
        dir_->path());
    ok_ = result.exit_code == 0;
    if (!ok_) std::cerr << result.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!have_torchvision()) GTEST_SKIP() << "Python torchvision is not installed";
    ASSERT_TRUE(ok_) << "make_torchvision_weights.py failed";
  }
  static const std::filesystem::path& dir() { return dir_->path(); }

 private:
  static inline TempDir* dir_ = nullptr;
  static inline bool ok_ = false;
};

}  // namespace

TEST_F(ImportTorchvision, ResNet18Zip) { expect_same_logits(dir(), "resnet18", "zip"); }
TEST_F(ImportTorchvision, ResNet50Zip) { expect_same_logits(dir(), "resnet50", "zip"); }
TEST_F(ImportTorchvision, MobileNetV3SmallLegacy) {
  expect_same_logits(dir(), "mobilenet_v3_small", "legacy");
}
TEST_F(ImportTorchvision, MobileNetV3SmallSafetensors) {
  expect_same_logits(dir(), "mobilenet_v3_small", "safetensors");
}
TEST_F(ImportTorchvision, MobileNetV3LargeZip) {
  expect_same_logits(dir(), "mobilenet_v3_large", "zip");
}
TEST_F(ImportTorchvision, EfficientNetB0Zip) { expect_same_logits(dir(), "efficientnet_b0", "zip"); }

// The exported file: metadata, head, layer walk, and the same logits after Classifier::load.
TEST_F(ImportTorchvision, ExportedFileLoadsWithMetadata) {
  auto model = tlkit::model::import_torchvision("resnet18", dir() / "resnet18_zip.pth");
  TempDir out;
  tlkit::model::export_model(model, out / "resnet18.pt");
  auto loaded = Classifier::load(out / "resnet18.pt");
  const auto& md = loaded.metadata();
  EXPECT_EQ(md.architecture, "resnet18");
  EXPECT_EQ(md.resize, 256);
  EXPECT_EQ(md.crop, 224);
  EXPECT_EQ(md.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(md.weights.rfind("file:resnet18_zip.pth sha256:", 0), 0u) << md.weights;
  EXPECT_EQ(loaded.num_classes(), 1000);
  EXPECT_EQ(loaded.find_head(), "fc");
  EXPECT_EQ(loaded.penultimate_layer(), "avgpool");
  EXPECT_TRUE(loaded.walk_matches_forward());
  EXPECT_EQ(loaded.trainable_parameter_count(), loaded.parameter_count());
  const auto x = held(dir() / "resnet18_zip_input.pt");
  loaded.train(false);
  at::NoGradGuard no_grad;
  const auto expected = held(dir() / "resnet18_zip_logits.pt");
  EXPECT_TRUE(at::allclose(loaded.forward(x), expected, 1e-5, 1e-5));
  // Cut at a block boundary and run the rest: the same logits.
  const auto features = loaded.forward_until(x, "layer3.1", /*flatten=*/false);
  EXPECT_TRUE(at::allclose(loaded.forward_from(features, "layer4.0"), expected, 1e-5, 1e-5));
}

// Training mode too: batch statistics, running statistics updated with torchvision's momentum.
TEST_F(ImportTorchvision, ResNet18TrainingModeMatches) {
  auto model = tlkit::model::import_torchvision("resnet18", dir() / "resnet18_zip.pth");
  model.train(true);
  at::NoGradGuard no_grad;
  const auto logits = model.forward(held(dir() / "resnet18_zip_input.pt"));
  const auto expected = held(dir() / "resnet18_zip_train_logits.pt");
  EXPECT_LE((logits - expected).abs().max().item<double>(),
            1e-5 * expected.abs().max().item<double>());
  const auto bn1 = model.module().attr("bn1").toModule();
  EXPECT_TRUE(at::allclose(bn1.attr("running_mean").toTensor(),
                           held(dir() / "resnet18_zip_train_bn1_mean.pt"), 1e-5, 1e-6));
  EXPECT_EQ(bn1.attr("num_batches_tracked").toTensor().item<std::int64_t>(), 8);
}

// --batch-norm frozen: in training mode every BatchNorm normalises with its stored statistics and
// leaves them alone (eval mode), so the logits are the eval logits; with "train" (the default)
// they are PyTorch's train() logits and the statistics move.
TEST_F(ImportTorchvision, FrozenBatchNormKeepsTheStoredStatistics) {
  auto model = tlkit::model::import_torchvision("resnet18", dir() / "resnet18_zip.pth");
  tlkit::train::ScriptNetwork network(model.module());
  const auto x = held(dir() / "resnet18_zip_input.pt");
  const auto bn = model.module().attr("layer4").toModule().attr("1").toModule().attr("bn2").toModule();
  const auto before = bn.attr("running_mean").toTensor().clone();
  at::NoGradGuard no_grad;
  network.set_batch_norm_updates(false);
  network.train(true);
  const auto frozen = network.forward(x);
  const auto eval = held(dir() / "resnet18_zip_logits.pt");
  EXPECT_LE((frozen - eval).abs().max().item<double>(), 1e-5 * eval.abs().max().item<double>());
  EXPECT_TRUE(at::equal(bn.attr("running_mean").toTensor(), before));
  network.set_batch_norm_updates(true);
  network.train(true);
  const auto trained = network.forward(x);
  const auto train_logits = held(dir() / "resnet18_zip_train_logits.pt");
  EXPECT_LE((trained - train_logits).abs().max().item<double>(),
            1e-5 * train_logits.abs().max().item<double>());
  EXPECT_FALSE(at::equal(bn.attr("running_mean").toTensor(), before));
}

TEST_F(ImportTorchvision, MismatchedWeightsNameTheFirstEntries) {
  tlkit::test::expect_error(
      [&] {
        tlkit::model::import_torchvision("mobilenet_v3_large", dir() / "mobilenet_v3_small_legacy.pth");
      },
      "the weights do not fit mobilenet_v3_large: missing features.");
  tlkit::test::expect_error(
      [&] { tlkit::model::import_torchvision("resnet101", dir() / "resnet18_zip.pth"); },
      "unknown architecture 'resnet101'; tlkit imports: vgg11");
}

TEST(ImportWeights, RefusesGlobalsOutsideAStateDict) {
  TempDir dir;
  const auto path = dir / "evil.pth";
  std::ofstream(path, std::ios::binary)
      << std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15)
      << std::string("\x80\x02M\xe9\x03.", 6) << "}."
      << "\x80\x02" << "cos\nsystem\nN.";
  EXPECT_EQ(tlkit::model::weights_file_format(path), "legacy");
  tlkit::test::expect_error([&] { tlkit::model::read_weights_file(path); },
                            "refers to 'os.system', which is not part of a plain state_dict");
  std::ofstream(dir / "text.pth") << "not a weight file at all";
  tlkit::test::expect_error([&] { tlkit::model::read_weights_file(dir / "text.pth"); },
                            "not a torch.save state_dict (zip or legacy) nor a .safetensors");
}

// Every architecture tlkit imports has torchvision's state_dict names, in order, and shapes
// (those without a logits test above; weights are zeros, one element broadcast).
TEST(ImportNames, EveryOtherArchitectureMatchesTorchvision) {
  if (!have_torchvision()) GTEST_SKIP() << "Python torchvision is not installed";
  TempDir dir;
  // Each VGG configuration once, with and without batch norm (the others differ only there).
  const std::string archs = "vgg11_bn,vgg13,vgg16_bn,vgg19,resnet34";
  const auto result = generate("--names " + tlkit::test::quoted(dir / "names.json") +
                                   " --names-archs " + archs,
                               dir.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream in(dir / "names.json");
  const auto names = tlkit::Json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  ASSERT_EQ(names.keys().size(), 5u);
  for (const auto& arch : names.keys()) {
    SCOPED_TRACE(arch);
    tlkit::model::StateDict state;
    for (const auto& entry : names.at(arch).as_array()) {
      std::vector<std::int64_t> shape;
      for (const auto& d : entry.at(1).as_array()) shape.push_back(d.as_int());
      const auto dtype = entry.at(0).as_string().find("num_batches") != std::string::npos
                             ? at::kLong
                             : at::kFloat;
      state.emplace_back(entry.at(0).as_string(),
                         at::zeros({}, at::TensorOptions().dtype(dtype)).expand(shape));
    }
    const auto model = tlkit::model::build_imported(arch, state, "zeros");
    const auto built = model.state_dict();
    std::map<std::string, std::vector<std::int64_t>> shapes;
    for (const auto& [name, tensor] : built) shapes[name] = tensor.sizes().vec();
    ASSERT_EQ(built.size(), state.size());
    for (const auto& [name, tensor] : state) EXPECT_EQ(shapes[name], tensor.sizes().vec()) << name;
  }
}

// A 1000-class head gets ImageNet-1k's names, equal to torchvision's `categories` in order.
TEST_F(ImportTorchvision, ImageNetHeadsGetTorchvisionsClassNames) {
  auto model = tlkit::model::import_torchvision("resnet18", dir() / "resnet18_zip.pth");
  const auto python = tlkit::test::run_command(
      tlkit::test::torch_python() +
      " -c 'import json; from torchvision.models._meta import _IMAGENET_CATEGORIES as c; "
      "print(json.dumps(c))'");
  ASSERT_EQ(python.exit_code, 0) << python.output;
  const auto expected = tlkit::Json::parse(python.output);
  ASSERT_EQ(model.class_names().size(), 1000u);
  ASSERT_EQ(expected.size(), 1000u);
  for (size_t i = 0; i < 1000; ++i)
    ASSERT_EQ(model.class_names()[i], expected.at(i).as_string()) << "class " << i;
  // Stored in the file: a reload has them.
  const auto path = dir() / "resnet18_names.pt";
  tlkit::model::export_model(model, path);
  EXPECT_EQ(Classifier::load(path).class_names()[0], "tench");
}
