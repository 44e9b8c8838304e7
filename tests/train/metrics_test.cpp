// Classification metrics: small cases computed by hand, and fixed predictions (ties, a class never
// predicted, classes absent from the labels) against scikit-learn (Debian's python3-sklearn).

#include <cmath>
#include <fstream>
#include <limits>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>
#include <tlkit/train/classification_report.h>
#include <tlkit/train/metrics.h>

#include "support/test_support.h"

namespace {

using tlkit::train::classification_metrics;
using tlkit::train::ScoreKind;

torch::Tensor probabilities(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> tensors;
  for (auto& row : rows) tensors.push_back(torch::tensor(row, torch::kDouble));
  return torch::stack(tensors);
}

TEST(ClassificationMetrics, PrecisionRecallF1AndBalancedAccuracyByHand) {
  // true 0 0 1 1, predicted 0 1 1 1
  const auto p = probabilities({{0.9, 0.1}, {0.3, 0.7}, {0.2, 0.8}, {0.4, 0.6}});
  const auto e = classification_metrics(p, torch::tensor({0, 0, 1, 1}), ScoreKind::Probabilities);
  const auto scores = e.per_class();
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_DOUBLE_EQ(scores[0].precision, 1.0);
  EXPECT_DOUBLE_EQ(scores[0].recall, 0.5);
  EXPECT_DOUBLE_EQ(scores[0].f1, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(scores[1].precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(scores[1].recall, 1.0);
  EXPECT_DOUBLE_EQ(scores[1].f1, 0.8);
  EXPECT_EQ(scores[0].support, 2);
  EXPECT_DOUBLE_EQ(e.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(e.macro_f1(), (2.0 / 3.0 + 0.8) / 2);
  EXPECT_DOUBLE_EQ(e.balanced_accuracy(), 0.75);
  EXPECT_NEAR(e.loss, -(std::log(0.9) + std::log(0.3) + std::log(0.8) + std::log(0.6)) / 4, 1e-12);
  EXPECT_EQ(e.top_k, 2);  // 5 clamped to the 2 classes
  EXPECT_DOUBLE_EQ(e.top_k_accuracy, 1.0);
}

TEST(ClassificationMetrics, ACalibrationBinIsItsGapBetweenAccuracyAndConfidence) {
  // all confidences 0.9 (one bin), half right: ECE = |0.5 - 0.9| = 0.4
  const auto p = probabilities({{0.9, 0.1}, {0.9, 0.1}, {0.1, 0.9}, {0.1, 0.9}});
  auto e = classification_metrics(p, torch::tensor({0, 1, 1, 0}), ScoreKind::Probabilities);
  EXPECT_NEAR(e.expected_calibration_error(), 0.4, 1e-12);
  EXPECT_EQ(e.calibration[13][0].item<double>(), 4);  // 0.9 lies in (13/15, 14/15]
  // two bins, weighted by their images: 0.6 (1 of 2 right: 0.1) and 0.9 (both right: 0.1)
  const auto q = probabilities({{0.6, 0.4}, {0.6, 0.4}, {0.9, 0.1}, {0.9, 0.1}});
  e = classification_metrics(q, torch::tensor({0, 1, 0, 0}), ScoreKind::Probabilities);
  EXPECT_NEAR(e.expected_calibration_error(), 0.5 * 0.1 + 0.5 * 0.1, 1e-12);
}

TEST(ClassificationMetrics, TiesGoToTheLowerClassInTopOneAndTopK) {
  // [0.4 0.4 0.2], true class 1: predicted 0 (numpy's argmax), a top-1 miss but a top-2 hit;
  // true class 0 is a hit.
  const auto p = probabilities({{0.4, 0.4, 0.2}, {0.4, 0.4, 0.2}, {0.2, 0.4, 0.4}});
  const auto e1 = classification_metrics(p, torch::tensor({1, 0, 2}), ScoreKind::Probabilities, 1);
  EXPECT_DOUBLE_EQ(e1.accuracy, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(e1.top_k_accuracy, e1.accuracy);
  const auto e2 = classification_metrics(p, torch::tensor({1, 0, 2}), ScoreKind::Probabilities, 2);
  EXPECT_DOUBLE_EQ(e2.top_k_accuracy, 1.0);
  // a class never predicted (2) has precision 0, recall 0
  EXPECT_EQ(e1.per_class()[2].precision, 0.0);
  EXPECT_EQ(e1.per_class()[2].recall, 0.0);
}

TEST(ClassificationMetrics, LogitsAndTheirSoftmaxGiveTheSameMetrics) {
  torch::manual_seed(4);
  const auto logits = torch::randn({40, 6}, torch::kDouble) * 2;
  const auto labels = torch::randint(0, 6, {40}, torch::kLong);
  const auto a = classification_metrics(logits, labels, ScoreKind::Logits, 3);
  const auto b =
      classification_metrics(torch::softmax(logits, 1), labels, ScoreKind::Probabilities, 3);
  EXPECT_NEAR(a.loss, b.loss, 1e-12);
  EXPECT_EQ(a.accuracy, b.accuracy);
  EXPECT_EQ(a.top_k_accuracy, b.top_k_accuracy);
  EXPECT_NEAR(a.expected_calibration_error(), b.expected_calibration_error(), 1e-12);
  EXPECT_TRUE(torch::equal(a.confusion, b.confusion));
  tlkit::test::expect_error(
      [&] { classification_metrics(logits, labels + 6, ScoreKind::Logits); }, "class indices");
}

TEST(ClassificationMetrics, ADivergedNetworksNaNOutputsGiveANaNLossNotACrash) {
  const auto logits = torch::full({3, 4}, std::numeric_limits<double>::quiet_NaN(), torch::kDouble);
  const auto e = classification_metrics(logits, torch::tensor({0, 1, 2}), ScoreKind::Logits);
  EXPECT_TRUE(std::isnan(e.loss));
  EXPECT_EQ(e.calibration.select(1, 0).sum().item<double>(), 3);
}

TEST(ClassificationMetrics, JsonHasFlatKeysAndOneEntryPerClass) {
  const auto p = probabilities({{0.9, 0.1}, {0.3, 0.7}});
  const auto e = classification_metrics(p, torch::tensor({0, 0}), ScoreKind::Probabilities);
  const auto json = tlkit::train::evaluation_json(e, {"cat", "dog"});
  for (const auto* key : {"accuracy", "top2", "macro_f1", "balanced_accuracy", "nll", "ece"})
    EXPECT_TRUE(json.contains(key)) << key;
  ASSERT_EQ(json.at("per_class").size(), 2u);
  EXPECT_EQ(json.at("per_class").at(1).at("name").as_string(), "dog");
  EXPECT_EQ(json.at("per_class").at(1).at("support").as_int(), 0);
}

// Fixed predictions over 5 classes: ties for the top class, class 3 in the labels but never
// predicted, class 2 predicted but absent from the labels, class 4 neither (left out of sklearn's
// macro average).
TEST(ClassificationMetrics, AgreeWithScikitLearn) {
  const auto probe =
      tlkit::test::run_command(tlkit::test::torch_python() + " -c 'import sklearn' 2>&1");
  if (probe.exit_code != 0)
    GTEST_SKIP() << "Debian's python3 has no scikit-learn (apt-get install python3-sklearn)";
  const auto p = probabilities({{0.70, 0.10, 0.10, 0.07, 0.03},
                                {0.40, 0.40, 0.10, 0.07, 0.03},
                                {0.40, 0.40, 0.10, 0.07, 0.03},
                                {0.20, 0.50, 0.20, 0.07, 0.03},
                                {0.10, 0.20, 0.60, 0.07, 0.03},
                                {0.30, 0.30, 0.30, 0.07, 0.03},
                                {0.05, 0.85, 0.05, 0.04, 0.01},
                                {0.25, 0.25, 0.20, 0.25, 0.05},
                                {0.35, 0.15, 0.20, 0.26, 0.04},
                                {0.15, 0.20, 0.45, 0.17, 0.03},
                                {0.55, 0.05, 0.10, 0.29, 0.01},
                                {0.20, 0.22, 0.40, 0.16, 0.02}});
  const auto labels = torch::tensor({0, 1, 0, 1, 0, 1, 1, 3, 3, 1, 0, 3});
  tlkit::test::TempDir dir;
  {
    std::ofstream scores(dir / "p.txt"), y(dir / "y.txt");
    for (std::int64_t i = 0; i < p.size(0); ++i) {
      for (std::int64_t j = 0; j < p.size(1); ++j) scores << p[i][j].item<double>() << " ";
      scores << "\n";
      y << labels[i].item<std::int64_t>() << "\n";
    }
  }
  std::ofstream(dir / "ref.py")
      << "import json, sys, warnings\nimport numpy as np\nfrom sklearn import metrics\n"
         "warnings.simplefilter('ignore')  # zero_division's warning: the value is 0\n"
         "p = np.loadtxt(sys.argv[1]); y = np.loadtxt(sys.argv[2]).astype(int)\n"
         "C = p.shape[1]; labels = list(range(C)); pred = p.argmax(1)\n"
         "P, R, F, S = metrics.precision_recall_fscore_support(y, pred, labels=labels)\n"
         "# sklearn's top-k breaks ties toward the higher index, tlkit's (as argmax) toward the\n"
         "# lower: the same ranking once ties are broken so (the gaps are >= 0.01)\n"
         "lower_first = p - 1e-9 * np.arange(C)\n"
         "conf = p.max(1); b = np.clip(np.ceil(conf * 15) - 1, 0, 14)\n"
         "ece = sum(abs((pred == y)[b == i].sum() - conf[b == i].sum()) for i in range(15)) / len(y)\n"
         "print(json.dumps(dict(accuracy=metrics.accuracy_score(y, pred),\n"
         "  macro_f1=metrics.f1_score(y, pred, average='macro'),\n"
         "  balanced=metrics.balanced_accuracy_score(y, pred),\n"
         "  top2=metrics.top_k_accuracy_score(y, lower_first, k=2, labels=labels),\n"
         "  top3=metrics.top_k_accuracy_score(y, lower_first, k=3, labels=labels),\n"
         "  top2_raw=metrics.top_k_accuracy_score(y, p, k=2, labels=labels),\n"
         "  nll=metrics.log_loss(y, p, labels=labels), ece=ece,\n"
         "  precision=P.tolist(), recall=R.tolist(), f1=F.tolist(), support=S.tolist())))\n";
  const auto run = tlkit::test::run_command(tlkit::test::torch_python() + " " +
                                            tlkit::test::quoted(dir / "ref.py") + " " +
                                            tlkit::test::quoted(dir / "p.txt") + " " +
                                            tlkit::test::quoted(dir / "y.txt") + " 2>&1");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto ref = tlkit::Json::parse(run.output);
  const auto e2 = classification_metrics(p, labels, ScoreKind::Probabilities, 2);
  const auto e3 = classification_metrics(p, labels, ScoreKind::Probabilities, 3);
  constexpr double tol = 1e-12;
  EXPECT_NEAR(e2.accuracy, ref.at("accuracy").as_double(), tol);
  EXPECT_NEAR(e2.macro_f1(), ref.at("macro_f1").as_double(), tol);
  EXPECT_NEAR(e2.balanced_accuracy(), ref.at("balanced").as_double(), tol);
  EXPECT_NEAR(e2.top_k_accuracy, ref.at("top2").as_double(), tol);
  EXPECT_NEAR(e3.top_k_accuracy, ref.at("top3").as_double(), tol);
  EXPECT_NEAR(e2.loss, ref.at("nll").as_double(), 1e-9);
  EXPECT_NEAR(e2.expected_calibration_error(), ref.at("ece").as_double(), tol);
  const auto scores = e2.per_class();
  ASSERT_EQ(scores.size(), 5u);
  for (size_t c = 0; c < scores.size(); ++c) {
    EXPECT_NEAR(scores[c].precision, ref.at("precision").at(c).as_double(), tol) << c;
    EXPECT_NEAR(scores[c].recall, ref.at("recall").at(c).as_double(), tol) << c;
    EXPECT_NEAR(scores[c].f1, ref.at("f1").at(c).as_double(), tol) << c;
    EXPECT_EQ(scores[c].support, ref.at("support").at(c).as_int()) << c;
  }
  // The fixture holds what it claims: a tie at the top, classes 2 / 3 / 4 as described, and a
  // tie that sklearn's own top-k ranks otherwise.
  EXPECT_EQ(e2.confusion.sum(0)[3].item<std::int64_t>(), 0);
  EXPECT_GT(scores[3].support, 0);
  EXPECT_GT(e2.confusion.sum(0)[2].item<std::int64_t>(), 0);
  EXPECT_EQ(scores[2].support, 0);
  EXPECT_EQ(scores[4].support + e2.confusion.sum(0)[4].item<std::int64_t>(), 0);
  EXPECT_NE(ref.at("top2").as_double(), ref.at("top2_raw").as_double());
}

}  // namespace
