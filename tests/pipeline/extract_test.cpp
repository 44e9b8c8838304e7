#include <tlkit/pipeline/extract.h>

#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/core/npy.h>
#include <tlkit/data/transforms.h>
#include <tlkit/model/classifier.h>
#include <tlkit/model/file_hash.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::model::Classifier;
using tlkit::test::TempDir;

namespace {

// Deterministic RGB images of 20×18 pixels, label i % 3; get(fail_at) throws.
class SyntheticDataset : public tlkit::data::Dataset {
 public:
  explicit SyntheticDataset(size_t n, size_t fail_at = SIZE_MAX) : n_(n), fail_at_(fail_at) {}
  size_t size() const override { return n_; }
  tlkit::data::Sample get(size_t i) const override {
    if (i == fail_at_) tlkit::fail("synthetic sample ", i, " is unreadable");
    const auto pixels =
        (torch::arange(20 * 18 * 3, torch::kLong) * static_cast<int64_t>(7 + i)) % 256;
    return {pixels.to(torch::kByte).reshape({20, 18, 3}), static_cast<int64_t>(i % 3),
            "img" + std::to_string(i)};
  }
  const std::vector<std::string>& classes() const override { return classes_; }
  std::string describe() const override { return "synthetic (" + std::to_string(n_) + " images)"; }

 private:
  size_t n_, fail_at_;
  std::vector<std::string> classes_{"a", "b", "c"};
};

// The model's preprocessing applied to every sample, as one batch.
torch::Tensor preprocessed(const Classifier& model, const tlkit::data::Dataset& dataset) {
  const auto& md = model.metadata();
  tlkit::data::Normalization n;
  for (size_t c = 0; c < 3; ++c) {
    n.mean[c] = static_cast<float>(md.mean[c]);
    n.std[c] = static_cast<float>(md.std[c]);
  }
  const auto transform =
      tlkit::data::eval_transform(static_cast<int>(md.resize), static_cast<int>(md.crop), n);
  std::mt19937_64 rng(0);
  std::vector<torch::Tensor> images;
  for (size_t i = 0; i < dataset.size(); ++i)
    images.push_back((*transform)(dataset.get(i).image, rng));
  return torch::stack(images);
}

}  // namespace

TEST(Extract, NumpyReadsFeaturesEqualToTheModelsForward) {
  TempDir dir;
  auto model = Classifier::load(tlkit::test::tiny_model());
  auto dataset = std::make_shared<SyntheticDataset>(11);
  tlkit::pipeline::ExtractOptions options;
  options.batch_size = 4;  // 3 batches, the last one short
  options.workers = 2;
  options.source = "synthetic";
  options.split = "train";
  const auto result = tlkit::pipeline::extract_features(model, dataset, dir / "out", options);
  EXPECT_EQ(result.rows, 11);
  EXPECT_EQ(result.layer, "classifier.4");
  EXPECT_EQ(result.dim, 16);

  // Python runs the same TorchScript file on the same preprocessed images.
  tlkit::write_npy(dir / "inputs.npy", preprocessed(model, *dataset));
  const auto check = tlkit::test::run_python(
      "import numpy as np, json\n"
      "f = np.load('{dir}/out/features.npy'); l = np.load('{dir}/out/labels.npy')\n"
      "assert f.dtype == np.float32 and f.shape == (11, 16), (f.dtype, f.shape)\n"
      "assert l.dtype == np.int64 and l.tolist() == [i % 3 for i in range(11)], l\n"
      "m = torch.jit.load('" +
          tlkit::test::tiny_model().string() +
          "').eval()\n"
          "x = torch.from_numpy(np.load('{dir}/inputs.npy'))\n"
          "with torch.no_grad():\n"
          "  h = torch.flatten(m.avgpool(m.features(x)), 1)\n"
          "  for i in range(5): h = getattr(m.classifier, str(i))(h)\n"
          "diff = (h - torch.from_numpy(f)).abs().max().item()\n"
          "print('max abs diff', diff)\n"
          "man = json.load(open('{dir}/out/manifest.json'))\n"
          "assert man['rows'] == 11 and man['feature_dim'] == 16 and man['layer'] == "
          "'classifier.4'\n"
          "assert man['sources'][10] == 'img10' and man['class_names'] == ['a', 'b', 'c']\n"
          "sys.exit(0 if diff < 1e-5 else 1)\n",
      dir.path());
  EXPECT_EQ(check.exit_code, 0) << check.output;

  const auto set = tlkit::pipeline::load_features(
      dir / "out", tlkit::model::sha256_file(tlkit::test::tiny_model()));
  EXPECT_EQ(set.features.sizes(), (std::vector<int64_t>{11, 16}));
  EXPECT_EQ(set.sources.size(), 11u);
  EXPECT_EQ(set.layer, "classifier.4");
  EXPECT_THROW(tlkit::pipeline::load_features(dir / "out", std::string(64, '0')), tlkit::Error);
}

TEST(Extract, CutsAtAnyLayerAndHonoursLimit) {
  TempDir dir;
  auto model = Classifier::load(tlkit::test::tiny_model());
  auto dataset = std::make_shared<SyntheticDataset>(9);
  tlkit::pipeline::ExtractOptions options;
  options.layer = "features";
  options.limit = 5;
  options.batch_size = 2;
  const auto result = tlkit::pipeline::extract_features(model, dataset, dir.path(), options);
  EXPECT_EQ(result.rows, 5);
  EXPECT_EQ(result.dim, 8 * 4 * 4);  // vgg_tiny: 8 channels at 16/4 = 4 pixels a side
  const auto features = tlkit::read_npy(dir / "features.npy");
  model.train(false);
  torch::NoGradGuard no_grad;
  const auto expected =
      model.forward_until(preprocessed(model, *dataset).slice(0, 0, 5), "features");
  EXPECT_TRUE(torch::allclose(features, expected, 1e-6, 1e-6));
  options.layer = "classifier.42";
  EXPECT_THROW(tlkit::pipeline::extract_features(model, dataset, dir / "other", options),
               tlkit::Error);
}

TEST(Extract, FailureLeavesNoFilesAndKeepsAnOldSetIntact) {
  TempDir dir;
  auto model = Classifier::load(tlkit::test::tiny_model());
  tlkit::pipeline::ExtractOptions options;
  options.batch_size = 2;
  options.strict = true;  // the failing sample fails the extraction (else it is left out)
  model.train(true);
  EXPECT_THROW(tlkit::pipeline::extract_features(model, std::make_shared<SyntheticDataset>(10, 7),
                                                 dir / "out", options),
               tlkit::Error);
  EXPECT_FALSE(fs::exists(dir / "out" / "features.npy"));
  EXPECT_FALSE(fs::exists(dir / "out" / "manifest.json"));
  if (fs::exists(dir / "out")) {
    EXPECT_TRUE(fs::is_empty(dir / "out")) << "temporary files left behind";
  }
  EXPECT_TRUE(model.is_training()) << "the model's mode was not restored";

  // A complete set survives a failed re-run.
  tlkit::pipeline::extract_features(model, std::make_shared<SyntheticDataset>(4), dir / "out",
                                    options);
  EXPECT_THROW(tlkit::pipeline::extract_features(model, std::make_shared<SyntheticDataset>(10, 7),
                                                 dir / "out", options),
               tlkit::Error);
  const auto set = tlkit::pipeline::load_features(dir / "out");
  EXPECT_EQ(set.features.size(0), 4);
  EXPECT_THROW(tlkit::pipeline::load_features(dir / "nothing"), tlkit::Error);

  // Labels outside the manifest's classes (a damaged cache) are one clear error, not a
  // cross-entropy failure deep in training.
  auto labels = set.labels.clone();
  labels[1] = 99;
  tlkit::write_npy(dir / "out" / "labels.npy", labels);
  tlkit::test::expect_error([&] { tlkit::pipeline::load_features(dir / "out"); },
                            "holds labels outside the manifest's");
}

TEST(Extract, SelectSplitNamesWhatIsMissing) {
  tlkit::data::Splits splits;
  splits.train = std::make_shared<SyntheticDataset>(3);
  splits.test = std::make_shared<SyntheticDataset>(2);
  EXPECT_EQ(tlkit::pipeline::select_split(splits, "all")->size(), 5u);
  EXPECT_EQ(tlkit::pipeline::select_split(splits, "all")->get(4).source, "img1");
  EXPECT_THROW(tlkit::pipeline::select_split(splits, "val"), tlkit::Error);
  EXPECT_THROW(tlkit::pipeline::select_split(splits, "everything"), tlkit::Error);
}

// Several layers from one pass: each folder holds what a single-layer extraction of that layer
// writes (the same rows, labels, sources and cache key).
TEST(Extract, SeveralLayersInOnePassEqualOneLayerAtATime) {
  TempDir dir;
  auto model = Classifier::load(tlkit::test::tiny_model());
  auto dataset = std::make_shared<SyntheticDataset>(7);
  tlkit::pipeline::ExtractOptions options;
  options.batch_size = 3;
  options.source = "synthetic";
  options.split = "train";
  // Out of forward order on purpose; features.3 (a convolution) is followed by an in-place ReLU.
  const std::vector<std::string> layers{"classifier.4", "features.3", "avgpool"};
  std::vector<tlkit::pipeline::LayerFolder> folders;
  for (const auto& layer : layers) folders.push_back({layer, dir / ("multi_" + layer)});
  const auto results = tlkit::pipeline::extract_features(model, dataset, folders, options);
  ASSERT_EQ(results.size(), layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    SCOPED_TRACE(layers[i]);
    auto single = options;
    single.layer = layers[i];
    const auto one =
        tlkit::pipeline::extract_features(model, dataset, dir / ("single_" + layers[i]), single);
    EXPECT_EQ(results[i].layer, layers[i]);
    EXPECT_EQ(results[i].rows, 7);
    EXPECT_EQ(results[i].dim, one.dim);
    const auto a = tlkit::pipeline::load_features(folders[i].dir);
    const auto b = tlkit::pipeline::load_features(dir / ("single_" + layers[i]));
    EXPECT_TRUE(torch::equal(a.features, b.features));
    EXPECT_TRUE(torch::equal(a.labels, b.labels));
    EXPECT_EQ(a.sources, b.sources);
    EXPECT_EQ(a.layer, layers[i]);
    EXPECT_EQ(tlkit::pipeline::stale_reason(a, b.manifest.at("key")), "");
  }
}
