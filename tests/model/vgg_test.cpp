#include <tlkit/model/vgg.h>

#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/file_hash.h>
#include <tlkit/model/state_dict.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::model::VGG;
using tlkit::model::VGGOptions;
using tlkit::test::TempDir;

namespace {

constexpr int64_t M = VGGOptions::kMaxPool;

// vgg_tiny's layout in scripts/export_vgg16.py.
VGGOptions tiny_options() { return VGGOptions({4, M, 8, M}).pool_size(2).hidden(16).num_classes(10); }

// The TorchScript fixture and the same weights as .pth (zip), legacy .pth and .safetensors.
struct TinyWeights {
  fs::path model, zip, legacy, safetensors;
};

const TinyWeights& tiny_weights() {
  static const TinyWeights weights = [] {
    const auto dir = tlkit::test::model_cache_dir();
    TinyWeights w{{}, dir / "tiny_w.pth", dir / "tiny_w_legacy.pth", dir / "tiny_w.safetensors"};
    w.model = tlkit::test::export_model_file(
        "--arch vgg_tiny --random-init --seed 5 --state-dict-out '" + w.zip.string() + "'", "tiny_w.pt");
    tlkit::test::export_model_file(
        "--arch vgg_tiny --random-init --seed 5 --state-dict-out '" + w.safetensors.string() + "'", "tiny_w2.pt");
    const auto result = tlkit::test::run_python(
        "sd = torch.load('" + w.zip.string() + "')\n"
        "torch.save(sd, '" + w.legacy.string() + "', _use_new_zipfile_serialization=False)\n",
        dir);
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return w;
  }();
  return weights;
}

void expect_same_scores(VGG& native, const fs::path& torchscript) {
  auto reference = tlkit::model::Classifier::load(torchscript);
  reference.train(false);
  native->eval();
  torch::manual_seed(2);
  const auto x = torch::randn({3, 3, 16, 16});
  torch::NoGradGuard no_grad;
  const double diff = (native->forward(x) - reference.forward(x)).abs().max().item<double>();
  EXPECT_LT(diff, 1e-5);
}

}  // namespace

TEST(VGG, ParameterNamesAndShapesMatchTorchvision) {
  TempDir dir;
  const auto result = tlkit::test::run_python(
      "import torchvision\n"
      "for n, t in torchvision.models.vgg16_bn().state_dict().items(): print(n, list(t.shape))\n",
      dir.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  VGG native(VGGOptions(VGGOptions::preset("D")).batch_norm(true));
  std::ostringstream ours;
  for (const auto& p : native->named_parameters()) ours << p.key() << " " << p.value().sizes() << "\n";
  for (const auto& b : native->named_buffers()) ours << b.key() << " " << b.value().sizes() << "\n";
  // Same set of lines; torchvision interleaves buffers, so compare sorted.
  auto sorted_lines = [](const std::string& text) {
    std::istringstream in(text);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      line.erase(std::remove(line.begin(), line.end(), ' '), line.end());
      lines.push_back(line);
    }
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  EXPECT_EQ(sorted_lines(ours.str()), sorted_lines(result.output));
}

TEST(VGG, ZipPthGivesTheTorchScriptModelsScores) {
  VGG native(tiny_options());
  native->load_weights(tiny_weights().zip);
  expect_same_scores(native, tiny_weights().model);
}

TEST(VGG, LegacyPthGivesTheTorchScriptModelsScores) {
  VGG native(tiny_options());
  native->load_weights(tiny_weights().legacy);
  expect_same_scores(native, tiny_weights().model);
}

TEST(VGG, SafetensorsGivesTheTorchScriptModelsScores) {
  VGG native(tiny_options());
  native->load_weights(tiny_weights().safetensors);
  expect_same_scores(native, tiny_weights().model);
}

TEST(VGG, SafetensorsRoundTrip) {
  TempDir dir;
  VGG a(tiny_options()), b(tiny_options());
  tlkit::model::StateDict state;
  for (const auto& p : a->named_parameters()) state.emplace_back(p.key(), p.value());
  tlkit::model::write_safetensors(dir / "w.safetensors", state);
  b->load_weights(dir / "w.safetensors");
  for (const auto& p : b->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), a->named_parameters()[p.key()]));
}

TEST(VGG, WrongWeightsAreAClearError) {
  VGG wrong_classes(tiny_options().num_classes(7));
  try {
    wrong_classes->load_weights(tiny_weights().zip);
    FAIL() << "no error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("wrong shape classifier.6.weight"), std::string::npos) << e.what();
  }
  VGG with_bn(tiny_options().batch_norm(true));
  try {
    with_bn->load_weights(tiny_weights().safetensors);
    FAIL() << "no error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
  TempDir dir;
  std::ofstream(dir / "junk.bin") << "junk";
  EXPECT_THROW(tlkit::model::read_state_dict(dir / "junk.bin"), tlkit::Error);
  EXPECT_THROW(tlkit::model::read_state_dict(dir / "missing.pth"), tlkit::Error);
  EXPECT_THROW(VGGOptions::preset("Z"), tlkit::Error);
}

// scripts/export_vgg16.py --weights-file: the same weights, and the file's SHA-256 recorded.
TEST(VGG, ExportScriptTakesAWeightsFile) {
  const auto& w = tiny_weights();
  const auto path = tlkit::test::export_model_file("--arch vgg_tiny --weights-file '" + w.zip.string() + "'",
                                                   "tiny_from_file.pt");
  auto from_file = tlkit::model::Classifier::load(path);
  EXPECT_FALSE(from_file.metadata().random_init());
  EXPECT_EQ(from_file.metadata().weights, "file:tiny_w.pth sha256:" + tlkit::model::sha256_file(w.zip));
  auto original = tlkit::model::Classifier::load(w.model);
  from_file.train(false);
  original.train(false);
  const auto x = torch::randn({2, 3, 16, 16});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(from_file.forward(x), original.forward(x)));
}
