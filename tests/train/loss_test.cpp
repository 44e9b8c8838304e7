// The training loss against Python's torch.nn.CrossEntropyLoss(weight, label_smoothing) in float64
// (scripts/gen_loss_reference.py), the class-weight specs, and the trainer using it.
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/train/loss.h>
#include <tlkit/train/trainer.h>

#include "support/test_support.h"
#include "train/train_fixtures.h"

namespace tlkit::train {
namespace {

const c10::impl::GenericDict& reference() {
  static const c10::impl::GenericDict dict = [] {
    const auto path = test::test_data_dir() / "loss_reference.pt";
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("missing " + path.string() + "; build target tlkit_reference_data");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return torch::pickle_load(bytes).toGenericDict();
  }();
  return dict;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  std::stringstream list(reference().at("case_names").toStringRef());
  for (std::string name; std::getline(list, name, ',');) names.push_back(name);
  return names;
}

std::vector<double> to_vector(const at::Tensor& t) {
  auto c = t.contiguous().to(at::kDouble);
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// Float64 against torch's float64: the same arithmetic up to summation order.
constexpr double kTolerance = 1e-9;

TEST(Loss, MatchesTorchCrossEntropyWithSmoothingAndWeights) {
  const auto names = case_names();
  ASSERT_EQ(names.size(), 7u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    const auto at = [&](const std::string& key) {
      return reference().at("case/" + name + "/" + key);
    };
    LossOptions options;
    options.label_smoothing = at("smoothing").toDouble();
    options.class_weights = to_vector(at("weights").toTensor());
    auto logits = at("logits").toTensor().clone().requires_grad_();
    const auto loss = classification_loss(logits, at("targets").toTensor(), options);
    ASSERT_EQ(loss.scalar_type(), at::kDouble);
    EXPECT_NEAR(loss.item<double>(), at("loss").toDouble(), kTolerance);
    loss.backward();
    EXPECT_LT((logits.grad() - at("grad").toTensor()).abs().max().item<double>(), kTolerance);
  }
}

TEST(Loss, SmoothingAndWeightsChangeTheLossAsStated) {
  // The negative control of the reference test: the cases differ from plain cross-entropy by far
  // more than the tolerance, so a loss that ignored an option would fail it.
  const auto at = [&](const std::string& name, const std::string& key) {
    return reference().at("case/" + name + "/" + key);
  };
  const double plain = at("plain", "loss").toDouble();
  for (const std::string name : {"smooth", "weighted", "weighted_smooth"})
    EXPECT_GT(std::abs(at(name, "loss").toDouble() - plain), 1e-3) << name;
  // loss.h's formula, restated: (1 - eps) x the NLL + eps x the loss against the uniform target.
  const auto logits = at("plain", "logits").toTensor();
  const auto targets = at("plain", "targets").toTensor();
  const auto logp = logits.log_softmax(1);
  const double eps = 0.1, classes = static_cast<double>(logits.size(1));
  const double nll = -logp.gather(1, targets.unsqueeze(1)).mean().item<double>();
  const double uniform = -logp.sum(1).mean().item<double>() / classes;
  EXPECT_NEAR(at("smooth", "loss").toDouble(), (1 - eps) * nll + eps * uniform, kTolerance);
}

TEST(Loss, RejectsBadOptionsNamingTheProblem) {
  test::expect_error([] { check_loss_options(LossOptions{-0.1, {}}, 3); }, "[0, 1)");
  test::expect_error([] { check_loss_options(LossOptions{1.0, {}}, 3); }, "[0, 1)");
  test::expect_error(
      [] {
        check_loss_options(LossOptions{0.1, {1, 2}}, 3);
      },
      "2 class weights for 3 classes");
  test::expect_error([] { check_loss_options(LossOptions{0, {1, 0, 2}}, 3); }, "positive");
  EXPECT_NO_THROW(check_loss_options(LossOptions{0.999, {1, 2, 3}}, 3));
}

TEST(Loss, ClassWeightSpecs) {
  // scikit-learn's "balanced": n / (classes x count); 10 images as 5, 3, 2.
  const auto balanced = resolve_class_weights("auto", {5, 3, 2});
  ASSERT_EQ(balanced.size(), 3u);
  EXPECT_DOUBLE_EQ(balanced[0], 10.0 / 15);
  EXPECT_DOUBLE_EQ(balanced[1], 10.0 / 9);
  EXPECT_DOUBLE_EQ(balanced[2], 10.0 / 6);
  EXPECT_TRUE(resolve_class_weights("none", {5, 3, 2}).empty());
  EXPECT_EQ(resolve_class_weights("1,2.5,0.5", {5, 3, 2}), (std::vector<double>{1, 2.5, 0.5}));
  test::expect_error(
      [] {
        resolve_class_weights("1,2", {5, 3, 2});
      },
      "gives 2 weights but the data has 3 classes");
  test::expect_error([] { resolve_class_weights("auto", {5, 0, 2}); }, "class 1 has no training");
  test::expect_error([] { check_class_weights_spec("1,-2"); }, "positive");
  test::expect_error([] { check_class_weights_spec("balanced"); }, "not none, auto or a list");
  // Written weights read back to the same doubles (config.json keeps the resolved numbers).
  EXPECT_EQ(parse_class_weights(format_class_weights(balanced), 3), balanced);
}

// One epoch of one full batch with plain SGD: the trainer's update is lr x the gradient of the
// configured loss, not of plain cross-entropy.
TEST(Loss, TheTrainerStepsOnTheConfiguredLoss) {
  auto [x, y] = test::blobs(4, 7);
  LossOptions smooth{0.3, {0.5, 1.0, 2.0}};
  auto step_weights = [&, x = x, y = y](const LossOptions& loss) {
    torch::manual_seed(3);
    auto linear = std::make_shared<torch::nn::LinearImpl>(4, 3);
    ModuleNetwork network(linear, [linear](const torch::Tensor& t) { return linear->forward(t); });
    torch::optim::SGD sgd(network.trainable_parameters(), torch::optim::SGDOptions(0.5));
    TrainerOptions options;
    options.epochs = 1;
    options.num_classes = 3;
    options.progress = false;
    options.loss = loss;
    Trainer trainer(network, sgd, options);
    TensorBatchSource source(x, y, 12, /*shuffle=*/false);
    trainer.fit(source);
    return linear->weight.detach().clone();
  };
  // By hand: the same start, one step on classification_loss.
  torch::manual_seed(3);
  torch::nn::Linear expected(4, 3);
  const auto loss = classification_loss(expected->forward(x), y, smooth);
  loss.backward();
  const auto by_hand = (expected->weight - 0.5 * expected->weight.grad()).detach();
  EXPECT_LT((step_weights(smooth) - by_hand).abs().max().item<double>(), 1e-6);
  EXPECT_GT((step_weights(LossOptions{}) - by_hand).abs().max().item<double>(), 1e-3);
}

}  // namespace
}  // namespace tlkit::train
