// Gradient clipping (train/clip.h) against Python in float64 (scripts/gen_clip_reference.py):
// torch's clip_grad_norm_ and clip_grad_value_, and timm's adaptive_clip_grad restated.
#include <tlkit/train/clip.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>

#include "support/test_support.h"

namespace tlkit::train {
namespace {

const c10::impl::GenericDict& reference() {
  static const c10::impl::GenericDict dict = [] {
    const auto path = test::test_data_dir() / "clip_reference.pt";
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("missing " + path.string() + "; build target tlkit_reference_data");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return torch::pickle_load(bytes).toGenericDict();
  }();
  return dict;
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  std::stringstream list(reference().at("names").toStringRef());
  for (std::string name; std::getline(list, name, ',');) out.push_back(name);
  return out;
}

// The reference's parameters with their unclipped gradients (fresh copies).
std::vector<at::Tensor> parameters() {
  std::vector<at::Tensor> out;
  for (const auto& name : names()) {
    auto p = reference().at("param/" + name).toTensor().clone().requires_grad_();
    p.mutable_grad() = reference().at("grad/" + name).toTensor().clone();
    out.push_back(p);
  }
  return out;
}

// Float64, the same operations as Python's: equal up to summation order.
constexpr double kTolerance = 1e-12;

TEST(Clip, EveryModeMatchesItsPythonReference) {
  ASSERT_EQ(names().size(), 3u);
  for (const std::string mode : {"norm", "value", "agc"}) {
    SCOPED_TRACE(mode);
    auto params = parameters();
    clip_gradients(params, parse_grad_clip_mode(mode),
                   reference().at(mode + "/threshold").toDouble());
    const auto list = names();
    for (size_t i = 0; i < params.size(); ++i) {
      const auto expected = reference().at(mode + "/" + list[i]).toTensor();
      const auto before = reference().at("grad/" + list[i]).toTensor();
      EXPECT_LT((params[i].grad() - expected).abs().max().item<double>(), kTolerance) << list[i];
      // The fixture makes every parameter's clipping matter (the test can tell the modes apart).
      EXPECT_GT((expected - before).abs().max().item<double>(), 1e-2) << list[i];
    }
  }
}

TEST(Clip, AgcLeavesSmallUnitsAloneAndScalesLargeOnesToTheirBound) {
  // One weight of two rows: row 0 with a gradient 10x its bound is scaled to the bound, row 1 with
  // a gradient under it is untouched; a parameter without a gradient is skipped.
  auto w = torch::tensor({{3.0, 4.0}, {0.6, 0.8}}, torch::kDouble).requires_grad_();
  w.mutable_grad() = torch::tensor({{0.0, 5.0}, {0.01, 0.0}}, torch::kDouble);
  auto unused = torch::ones({3}, torch::kDouble).requires_grad_();
  clip_gradients({w, unused}, GradClipMode::kAgc, 0.1);
  // Row 0: ||W_0|| = 5, bound 0.5, ||G_0|| = 5 -> G_0 x 0.1; row 1: bound 0.1 > 0.01.
  EXPECT_TRUE(torch::allclose(w.grad(), torch::tensor({{0.0, 0.5}, {0.01, 0.0}}, torch::kDouble)));
  EXPECT_FALSE(unused.grad().defined());
}

TEST(Clip, ModesAreNamedAndThresholdsChecked) {
  for (const auto* name : {"norm", "value", "agc"})
    EXPECT_EQ(grad_clip_mode_name(parse_grad_clip_mode(name)), name);
  test::expect_error([] { parse_grad_clip_mode("l2"); }, "must be norm, value or agc");
  test::expect_error([] { clip_gradients({}, GradClipMode::kAgc, 0); }, "must be positive");
}

}  // namespace
}  // namespace tlkit::train
