// Temperature scaling against a Python float64 reference (torch's L-BFGS on log T, Debian's
// python3-torch), on fixed over- and under-confident logits; the bounds; and log-probabilities
// giving the same T as logits.
#include <cmath>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/core/json.h>
#include <tlkit/train/calibration.h>
#include <tlkit/train/metrics.h>

#include "support/test_support.h"

namespace tlkit::train {
namespace {

// Logits [n, c] whose argmax is right for about `right` of the rows, scaled by `scale`: a large
// scale is over-confident for that accuracy (T > 1), a small one under-confident (T < 1).
std::pair<at::Tensor, at::Tensor> fixture(std::uint64_t seed, std::int64_t n, std::int64_t c,
                                          double right, double scale) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto z = at::randn({n, c}, gen, at::TensorOptions().dtype(at::kDouble));
  const auto labels = at::randint(c, {n}, gen, at::TensorOptions().dtype(at::kLong));
  const auto coin = at::rand({n}, gen, at::TensorOptions().dtype(at::kDouble));
  for (std::int64_t i = 0; i < n; ++i)
    if (coin[i].item<double>() < right) z[i][labels[i].item<std::int64_t>()] += 2.5;
  return {z * scale, labels};
}

void write_rows(const std::filesystem::path& file, const at::Tensor& t) {
  std::ofstream out(file);
  out.precision(17);
  const auto m = t.dim() == 1 ? t.unsqueeze(1) : t;
  for (std::int64_t i = 0; i < m.size(0); ++i) {
    for (std::int64_t j = 0; j < m.size(1); ++j) out << m[i][j].item<double>() << " ";
    out << "\n";
  }
}

// T from torch.optim.LBFGS (strong Wolfe) on log T in float64, and the NLL there.
std::pair<double, double> python_reference(const at::Tensor& z, const at::Tensor& y) {
  tlkit::test::TempDir dir;
  write_rows(dir / "z.txt", z);
  write_rows(dir / "y.txt", y.to(at::kDouble));
  std::ofstream(dir / "ref.py")
      << "import json, sys\nimport numpy as np\nimport torch\n"
         "z = torch.tensor(np.loadtxt(sys.argv[1]), dtype=torch.float64)\n"
         "y = torch.tensor(np.loadtxt(sys.argv[2]), dtype=torch.float64).long()\n"
         "log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)\n"
         "opt = torch.optim.LBFGS([log_t], lr=1, max_iter=500, tolerance_grad=1e-14,\n"
         "                        tolerance_change=0, line_search_fn='strong_wolfe')\n"
         "nll = torch.nn.CrossEntropyLoss()\n"
         "def closure():\n"
         "    opt.zero_grad(); loss = nll(z / log_t.exp(), y); loss.backward(); return loss\n"
         "for _ in range(5): opt.step(closure)\n"
         "t = log_t.exp().item()\n"
         "print(json.dumps(dict(t=t, nll=nll(z / t, y).item())))\n";
  const auto run = tlkit::test::run_command(
      tlkit::test::torch_python() + " " + tlkit::test::quoted(dir / "ref.py") + " " +
      tlkit::test::quoted(dir / "z.txt") + " " + tlkit::test::quoted(dir / "y.txt") + " 2>&1");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  const auto ref = Json::parse(run.output);
  return {ref.at("t").as_double(), ref.at("nll").as_double()};
}

TEST(Calibration, TemperatureMatchesPythonLbfgsInFloat64) {
  const auto probe =
      tlkit::test::run_command(tlkit::test::torch_python() + " -c 'import torch, numpy' 2>&1");
  if (probe.exit_code != 0) GTEST_SKIP() << "Debian's python3 has no torch (apt-get install python3-torch)";
  struct Case {
    const char* name;
    std::uint64_t seed;
    std::int64_t n, c;
    double right, scale;
  };
  for (const auto& k : {Case{"over-confident", 7, 300, 5, 0.6, 4.0},
                        Case{"under-confident", 8, 200, 10, 0.9, 0.4},
                        Case{"near one", 9, 400, 3, 0.7, 1.0}}) {
    SCOPED_TRACE(k.name);
    const auto [z, y] = fixture(k.seed, k.n, k.c, k.right, k.scale);
    const auto fit = fit_temperature(z, y);
    const auto [t, nll] = python_reference(z, y);
    EXPECT_FALSE(fit.at_bound);
    EXPECT_NEAR(fit.temperature, t, 1e-6 * t);
    EXPECT_NEAR(fit.nll_after, nll, 1e-10);
    EXPECT_LE(fit.nll_after, fit.nll_before);
    // The case is what it says: far enough from T = 1 that a fit returning 1 would fail.
    if (k.scale > 1) {
      EXPECT_GT(t, 1.5);
    }
    if (k.scale < 1) {
      EXPECT_LT(t, 0.7);
    }
  }
}

TEST(Calibration, LogProbabilitiesGiveTheSameTemperatureAsLogits) {
  const auto [z, y] = fixture(11, 250, 6, 0.65, 3.0);
  const auto from_logits = fit_temperature(z, y);
  const auto from_log_p = fit_temperature(at::log_softmax(z, 1) + 17.0, y);
  EXPECT_NEAR(from_log_p.temperature, from_logits.temperature, 1e-10);
  // softmax(z / T) as calibrated_log_probabilities gives it, and its NLL is the fit's.
  const auto log_p = calibrated_log_probabilities(z, from_logits.temperature);
  EXPECT_NEAR(-log_p.gather(1, y.unsqueeze(1)).mean().item<double>(), from_logits.nll_after, 1e-12);
  const auto before = classification_metrics(z, y, ScoreKind::Logits);
  const auto after = classification_metrics(log_p, y, ScoreKind::Logits);
  EXPECT_EQ(after.accuracy, before.accuracy);  // the argmax does not move
  EXPECT_LT(after.expected_calibration_error(), before.expected_calibration_error());
}

TEST(Calibration, AnOptimumBeyondTheBoundsIsCutThere) {
  // Every row right by a wide margin: the NLL falls as T -> 0.
  const auto y = torch::arange(4).repeat({10});
  const auto sure = at::one_hot(y, 4).to(at::kDouble) * 3.0;
  const auto fit = fit_temperature(sure, y);
  EXPECT_TRUE(fit.at_bound);
  EXPECT_DOUBLE_EQ(fit.temperature, kMinTemperature);
  // Labels no better than chance under confident logits: the NLL falls as T grows.
  const auto wrong = fit_temperature(sure, (y + 1) % 4);
  EXPECT_TRUE(wrong.at_bound);
  EXPECT_DOUBLE_EQ(wrong.temperature, kMaxTemperature);
}

TEST(Calibration, RefusesBadInput) {
  EXPECT_THROW(fit_temperature(torch::zeros({3}), torch::zeros({3}, torch::kLong)), Error);
  EXPECT_THROW(fit_temperature(torch::zeros({3, 2}), torch::zeros({2}, torch::kLong)), Error);
  EXPECT_THROW(fit_temperature(torch::zeros({2, 2}), torch::tensor({0, 2})), Error);
  auto bad = torch::zeros({2, 2});
  bad[0][0] = std::nan("");
  EXPECT_THROW(fit_temperature(bad, torch::tensor({0, 1})), Error);
}

}  // namespace
}  // namespace tlkit::train
