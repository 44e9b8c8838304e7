#include <tlkit/model/classifier.h>

#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/core/npy.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::model::Classifier;
using tlkit::test::TempDir;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const tlkit::Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(Classifier, LoadErrorsSayWhatAndHow) {
  TempDir dir;
  auto message = error_of([&] { Classifier::load(dir / "missing.pt"); });
  EXPECT_TRUE(contains(message, "no such file") && contains(message, "export_vgg16.py")) << message;

  std::ofstream(dir / "garbage.pt") << "this is not a zip archive";
  message = error_of([&] { Classifier::load(dir / "garbage.pt"); });
  EXPECT_TRUE(contains(message, "not a TorchScript archive") &&
              contains(message, "export_vgg16.py"))
      << message;

  torch::jit::Module empty("Empty");
  empty.define("def forward(self, x):\n  return x\n");
  message = error_of([&] { Classifier{empty}; });
  EXPECT_TRUE(contains(message, "no parameters")) << message;

  torch::jit::Module not_classifier("Conv");
  not_classifier.register_parameter("weight", torch::ones({2, 3, 1, 1}), false);
  not_classifier.define("def forward(self, x):\n  return torch.conv2d(x, self.weight)\n");
  message = error_of([&] { Classifier{not_classifier}; });
  EXPECT_TRUE(contains(message, "not [N, classes]")) << message;
}

TEST(Classifier, ReadsTheExportedMetadata) {
  const auto model = Classifier::load(tlkit::test::tiny_model());
  const auto& md = model.metadata();
  EXPECT_TRUE(md.present);
  EXPECT_EQ(md.architecture, "vgg_tiny");
  EXPECT_EQ(md.input_size, 16);
  EXPECT_TRUE(md.random_init());
  EXPECT_EQ(md.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(model.num_classes(), 10);
  EXPECT_EQ(model.class_names().front(), "class_0");
  EXPECT_EQ(model.find_head(), "classifier.6");
  EXPECT_EQ(model.penultimate_layer(), "classifier.4");
  EXPECT_TRUE(model.walk_matches_forward());
}

// The layer table against Python: names, types, output shapes and parameter counts.
TEST(Classifier, LayerTableMatchesPython) {
  TempDir dir;
  const auto path = tlkit::test::tiny_model();
  const auto result = tlkit::test::run_python(
      "m = torch.jit.load('" + path.string() +
          "').eval()\n"
          "x = torch.zeros(1, 3, 16, 16)\n"
          "for top in ['features', 'avgpool', 'classifier']:\n"
          "  mods = list(getattr(m, top).named_children()) if top != 'avgpool' else [('', "
          "m.avgpool)]\n"
          "  for n, c in mods:\n"
          "    if top == 'classifier' and x.dim() > 2: x = torch.flatten(x, 1)\n"
          "    x = c(x)\n"
          "    name = top + ('.' + n if n else '')\n"
          "    t = c.original_name\n"
          "    print(name, t, 'x'.join(map(str, x.shape)), sum(p.numel() for p in "
          "c.parameters()))\n",
      dir.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto model = Classifier::load(path);
  std::istringstream lines(result.output);
  size_t i = 0;
  for (std::string name, type, shape, params; lines >> name >> type >> shape >> params; ++i) {
    ASSERT_LT(i, model.layers().size());
    const auto layer = model.layers()[i];
    std::string ours;
    for (const auto d : layer.output_shape) ours += (ours.empty() ? "" : "x") + std::to_string(d);
    EXPECT_EQ(layer.name, name);
    EXPECT_EQ(layer.type, type);
    EXPECT_EQ(ours, shape) << name;
    EXPECT_EQ(layer.params, std::stoll(params)) << name;
  }
  EXPECT_EQ(i, model.layers().size());
  EXPECT_GT(i, 10u);
}

TEST(Classifier, ForwardUntilEqualsTheModelsOwnPieces) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  model.train(false);
  torch::manual_seed(3);
  const auto x = torch::randn({4, 3, 16, 16});
  torch::NoGradGuard no_grad;
  auto& m = model.module();
  const auto features = m.attr("features").toModule().forward({x}).toTensor();
  const auto pooled = m.attr("avgpool").toModule().forward({features}).toTensor();
  EXPECT_TRUE(torch::equal(model.forward_until(x, "features", false), features));
  EXPECT_TRUE(torch::equal(model.forward_until(x, "avgpool"), pooled.flatten(1)));
  // The penultimate features go through the head to give the model's scores.
  auto head = m.attr("classifier").toModule().attr("6").toModule();
  const auto scores = head.forward({model.forward_until(x, model.penultimate_layer())}).toTensor();
  EXPECT_TRUE(torch::allclose(scores, model.forward(x), 1e-6, 1e-6));
  EXPECT_THROW(model.forward_until(x, "classifier.99"), tlkit::Error);
}

TEST(Classifier, ForwardFromInvertsForwardUntil) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  model.train(false);
  torch::manual_seed(4);
  const auto x = torch::randn({5, 3, 16, 16});
  torch::NoGradGuard no_grad;
  const auto scores = model.forward(x);
  // vgg_tiny: features.0 conv, .1 relu, .2 pool, .3 conv, .4 relu, .5 pool, avgpool,
  // classifier.0-6.
  EXPECT_EQ(model.feature_layer_for("features.3"), "features.2");
  EXPECT_EQ(model.feature_layer_for("classifier.0"), "avgpool");
  EXPECT_EQ(model.feature_layer_for("classifier.6"), "classifier.4");  // skips the Dropout
  EXPECT_EQ(model.input_shape("features.3"), (std::vector<int64_t>{1, 4, 8, 8}));
  EXPECT_EQ(model.input_shape("features.0"), (std::vector<int64_t>{1, 3, 16, 16}));
  for (const auto* head :
       {"features.1", "features.3", "classifier.0", "classifier.3", "classifier.6"}) {
    const auto cut = model.feature_layer_for(head);
    // Flattened rows (the feature cache's form) and the layer's own shape both work.
    EXPECT_TRUE(
        torch::allclose(model.forward_from(model.forward_until(x, cut), head), scores, 1e-5, 1e-6))
        << head;
    EXPECT_TRUE(torch::allclose(model.forward_from(model.forward_until(x, cut, false), head),
                                scores, 1e-5, 1e-6))
        << head;
  }
  const auto message = error_of([&] { model.forward_from(torch::zeros({2, 100}), "features.3"); });
  EXPECT_TRUE(contains(message, "[1, 4, 8, 8]") && contains(message, "100")) << message;
  EXPECT_THROW(model.feature_layer_for("features.0"), tlkit::Error);
  EXPECT_THROW(model.forward_from(x, "classifier.99"), tlkit::Error);
  const auto upper = model.layers_from("classifier.0");
  ASSERT_EQ(upper.size(), 7u);
  EXPECT_EQ(upper.front().first, "classifier.0");
  EXPECT_EQ(upper.back().first, "classifier.6");
}

TEST(Classifier, ReinitializeFromALayerKeepsTheLayersBelow) {
  auto model = Classifier::load(
      tlkit::test::export_model_file("--arch vgg_cifar --random-init --seed 3", "cifar.pt"));
  // Move the BatchNorm statistics away from their initial values first.
  model.train(true);
  {
    torch::NoGradGuard no_grad;
    model.forward(torch::randn({4, 3, 32, 32}) * 3 + 1);
  }
  const auto state_before = model.state_dict();
  std::map<std::string, at::Tensor> before;
  for (const auto& [name, value] : state_before) before[name] = value.clone();
  torch::manual_seed(0);
  model.reinitialize("features.14");
  for (const auto& [name, value] : model.state_dict()) {
    const bool lower = name.rfind("features.", 0) == 0 && std::stoi(name.substr(9)) < 14;
    if (lower) {
      EXPECT_TRUE(torch::equal(value, before.at(name))) << name;
      continue;
    }
    if (contains(name, "running_mean") || contains(name, ".bias")) {
      EXPECT_EQ(value.abs().max().item<double>(), 0.0) << name;
    } else if (contains(name, "running_var") || (value.dim() == 1 && contains(name, ".weight"))) {
      EXPECT_TRUE(torch::equal(value, torch::ones_like(value))) << name;
    } else if (value.dim() >= 2) {
      // torch's default: kaiming_uniform_(a=√5) is U(±1/√fan_in).
      const double bound = 1.0 / std::sqrt(static_cast<double>(value[0].numel()));
      EXPECT_LE(value.abs().max().item<double>(), bound + 1e-7) << name;
      EXPECT_FALSE(torch::equal(value, before.at(name))) << name;
    }
  }
  EXPECT_THROW(model.reinitialize("features.99"), tlkit::Error);
}

TEST(Classifier, ReplaceHeadGivesNewClassesAndTrainableParameters) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  const auto old_weight =
      model.module().attr("classifier").toModule().attr("6").toModule().attr("weight").toTensor();
  model.freeze_all();
  EXPECT_EQ(model.trainable_parameter_count(), 0);
  torch::manual_seed(0);
  model.replace_head(3, {"cat", "dog", "fox"});
  EXPECT_EQ(model.num_classes(), 3);
  EXPECT_EQ(model.class_names(), (std::vector<std::string>{"cat", "dog", "fox"}));
  EXPECT_EQ(model.forward(torch::zeros({2, 3, 16, 16})).sizes(), (std::vector<int64_t>{2, 3}));
  const auto head = model.module().attr("classifier").toModule().attr("6").toModule();
  const auto weight = head.attr("weight").toTensor();
  const auto bias = head.attr("bias").toTensor();
  // torch.nn.Linear's init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(old_weight.size(1)));
  EXPECT_LE(weight.abs().max().item<double>(), bound);
  EXPECT_GT(weight.abs().max().item<double>(), bound / 4);
  EXPECT_LE(bias.abs().max().item<double>(), bound);
  EXPECT_TRUE(weight.requires_grad() && bias.requires_grad());
  EXPECT_EQ(model.trainable_parameter_count(), weight.numel() + bias.numel());
  const auto layers = model.layers();
  EXPECT_EQ(layers.back().output_shape, (std::vector<int64_t>{1, 3}));
  EXPECT_THROW(model.replace_head(2, {"only one"}), tlkit::Error);
  EXPECT_THROW(model.replace_head(0), tlkit::Error);
}

TEST(Classifier, FreezeBelowAndUnfreezeFrom) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  model.unfreeze_from("classifier");
  for (const auto& layer : model.layers()) {
    if (!layer.has_params()) continue;
    EXPECT_EQ(layer.trainable(), layer.name.rfind("classifier", 0) == 0) << layer.name;
  }
  model.unfreeze_all();
  model.freeze_below("features.3");
  for (const auto& layer : model.layers()) {
    if (layer.name == "features.0") {
      EXPECT_FALSE(layer.trainable());
    }
    if (layer.name == "features.3") {
      EXPECT_TRUE(layer.trainable());
    }
  }
  const auto message = error_of([&] { model.freeze_below("feature.3"); });
  EXPECT_TRUE(contains(message, "no layer named 'feature.3'") && contains(message, "tlkit info"))
      << message;
}

TEST(Classifier, SetHeadAcceptsOnlyLinearLayers) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  model.set_head("classifier.3");
  EXPECT_EQ(model.find_head(), "classifier.3");
  EXPECT_THROW(model.set_head("features.0"), tlkit::Error);
  EXPECT_THROW(model.set_head("nope"), tlkit::Error);
}

TEST(Classifier, CloneIsDeep) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  auto copy = model.clone();
  copy.replace_head(2);
  EXPECT_EQ(model.num_classes(), 10);
  EXPECT_EQ(copy.num_classes(), 2);
  const auto x = torch::randn({1, 3, 16, 16});
  model.train(false);
  copy.train(false);
  EXPECT_TRUE(
      torch::equal(copy.forward_until(x, "classifier.4"), model.forward_until(x, "classifier.4")));
}

// A copy of a partly trainable model trains like the original: leaf parameters (an optimizer
// takes them), as trainable as the originals, and frozen ones stay frozen.
TEST(Classifier, CloneKeepsTrainableLeafParameters) {
  auto model = Classifier::load(tlkit::test::tiny_model());
  model.freeze_all();
  model.unfreeze_from("classifier.3");
  auto copy = model.clone();
  const auto from = model.module().parameters();
  const auto to = copy.module().parameters();
  size_t trainable = 0;
  auto a = from.begin();
  for (auto b = to.begin(); b != to.end(); ++a, ++b) {
    EXPECT_TRUE((*b).is_leaf());
    EXPECT_EQ((*b).requires_grad(), (*a).requires_grad());
    EXPECT_FALSE((*b).is_same(*a));
    trainable += (*b).requires_grad();
  }
  EXPECT_GT(trainable, 0u);
  std::vector<torch::Tensor> params;
  for (const auto& p : copy.module().parameters())
    if (p.requires_grad()) params.push_back(p);
  EXPECT_NO_THROW(torch::optim::SGD(params, torch::optim::SGDOptions(0.1)));
}
