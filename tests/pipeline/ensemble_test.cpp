#include <tlkit/pipeline/ensemble.h>

#include <algorithm>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/core/npy.h>
#include <tlkit/model/classifier.h>
#include <tlkit/train/callbacks.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::model::Classifier;
using tlkit::pipeline::EnsembleMember;
using tlkit::test::TempDir;

namespace {

// vgg_tiny with random weights of seed `seed`, made confident on `images`.
Classifier lively_tiny(int seed, const at::Tensor& images) {
  auto model = Classifier::load(
      tlkit::test::export_model_file("--arch vgg_tiny --random-init --seed " + std::to_string(seed),
                                     "tiny_seed" + std::to_string(seed) + ".pt"));
  tlkit::test::make_lively(model, images, 2.5, static_cast<std::uint64_t>(seed));
  return model;
}

at::Tensor mean_softmax(std::vector<Classifier>& models, const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  auto sum = torch::zeros({images.size(0), models.front().num_classes()});
  for (auto& m : models) {
    m.train(false);
    sum += torch::softmax(m.forward(images), 1);
  }
  return sum / static_cast<double>(models.size());
}

}  // namespace

// The saved ensemble (three members) computes log of the mean of the members' softmax, in tlkit
// and in Python's torch.jit.load, and carries the members' class names and preprocessing.
TEST(Ensemble, SavedEnsembleGivesTheMeanOfTheMembersSoftmax) {
  TempDir dir;
  torch::manual_seed(0);
  const auto images = torch::randn({6, 3, 16, 16});
  std::vector<Classifier> models;
  for (int seed : {1, 2, 3}) models.push_back(lively_tiny(seed, images));
  const auto expected = mean_softmax(models, images);
  // The members are confident and disagree, so their mean differs from each of them.
  auto first_only = std::vector<Classifier>{models.front()};
  const auto first = mean_softmax(first_only, images);
  ASSERT_GT(first.max().item<double>(), 0.5) << "the members are not confident";
  ASSERT_GT((first - expected).abs().max().item<double>(), 0.05);

  std::vector<EnsembleMember> members;
  for (size_t i = 0; i < models.size(); ++i)
    members.push_back({"m" + std::to_string(i) + ".pt", models[i].clone()});
  auto ensemble = tlkit::pipeline::make_ensemble(std::move(members));
  tlkit::pipeline::save_ensemble(ensemble, dir / "ens.pt");

  auto loaded = Classifier::load(dir / "ens.pt");
  EXPECT_EQ(loaded.num_classes(), 10);
  EXPECT_EQ(loaded.class_names(), models.front().class_names());
  EXPECT_EQ(loaded.metadata().crop, 16);
  EXPECT_EQ(loaded.metadata().mean, models.front().metadata().mean);
  at::Tensor ours;
  {
    torch::NoGradGuard no_grad;
    ours = loaded.forward(images).exp();
  }
  const auto diff = (ours - expected).abs().max().item<double>();
  std::printf("saved ensemble vs mean of members' softmax: max |diff| %.3g\n", diff);
  EXPECT_LT(diff, 1e-6);

  tlkit::write_npy(dir / "images.npy", images);
  tlkit::write_npy(dir / "expected.npy", expected);
  const auto result = tlkit::test::run_python(
      "import numpy as np\n"
      "m = torch.jit.load('{dir}/ens.pt')\n"
      "assert list(m.tlkit_members) == ['m0.pt', 'm1.pt', 'm2.pt'], m.tlkit_members\n"
      "x = torch.from_numpy(np.load('{dir}/images.npy'))\n"
      "with torch.no_grad(): p = m(x).exp()\n"
      "diff = (p - torch.from_numpy(np.load('{dir}/expected.npy'))).abs().max().item()\n"
      "print('python max abs diff', diff)\n"
      "sys.exit(0 if diff < 1e-6 else 1)\n",
      dir.path());
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

// A run with snapshots gives one member per snapshot (model.pt with the snapshot's weights); a run
// without gives its model.pt.
TEST(Ensemble, RunMembersAreSnapshotsOrTheModel) {
  TempDir dir;
  const auto tiny = tlkit::test::tiny_model();
  fs::create_directories(dir / "a" / "snapshots");
  fs::create_directories(dir / "b");
  fs::copy_file(tiny, dir / "a" / "model.pt");
  fs::copy_file(tiny, dir / "b" / "model.pt");
  auto model = Classifier::load(tiny);
  tlkit::train::NamedTensors state;
  for (const auto& [name, t] : model.state_dict()) state.emplace_back(name, t.detach().clone());
  torch::manual_seed(4);
  for (int i : {1, 2}) {
    for (auto& [name, t] : state)
      if (t.is_floating_point()) t.normal_();
    tlkit::train::save_state(state,
                             dir / "a" / "snapshots" / ("snapshot_00" + std::to_string(i) + ".pt"));
  }
  const auto members = tlkit::pipeline::run_members({dir / "a", dir / "b"}, {});
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(fs::path(members[1].label).filename(), "snapshot_002.pt");
  EXPECT_EQ(fs::path(members[2].label), dir / "b" / "model.pt");
  const auto w = [](Classifier m) { return tlkit::test::parameter(m, "classifier.6.weight"); };
  // The second snapshot's weights (the last ones drawn) are in the second member.
  const auto drawn = std::find_if(state.begin(), state.end(), [](const auto& entry) {
    return entry.first == "classifier.6.weight";
  });
  ASSERT_NE(drawn, state.end());
  EXPECT_TRUE(torch::equal(w(members[1].model), drawn->second));
  EXPECT_FALSE(torch::equal(w(members[0].model), w(members[1].model)));
  EXPECT_TRUE(torch::equal(w(members[2].model), w(model)));
}

TEST(Ensemble, RefusesMembersThatDisagreeNamingTheDifference) {
  const auto tiny = tlkit::test::tiny_model();
  auto make = [&](const std::string& label) {
    return EnsembleMember{label, Classifier::load(tiny)};
  };

  std::vector<EnsembleMember> members;
  members.push_back(make("a.pt"));
  members.push_back(make("b.pt"));
  members.back().model.replace_head(
      10, {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"});
  tlkit::test::expect_error([&] { tlkit::pipeline::check_members_agree(members); },
                            "ensemble members disagree on the class names: 'a.pt' has [class_0");
  tlkit::test::expect_error([&] { tlkit::pipeline::check_members_agree(members); },
                            "but 'b.pt' has [zero, one");

  members.pop_back();
  members.push_back(make("c.pt"));
  const auto md = members.back().model.metadata();
  members.back().model.set_preprocessing(md.resize, md.crop, {0.5, 0.5, 0.5}, md.std);
  tlkit::test::expect_error([&] { tlkit::pipeline::make_ensemble(std::move(members)); },
                            "disagree on the mean: 'a.pt' has [0.485, 0.456, 0.406] but 'c.pt' "
                            "has [0.5, 0.5, 0.5]");

  std::vector<EnsembleMember> resized;
  resized.push_back(make("a.pt"));
  resized.push_back(make("d.pt"));
  resized.back().model.set_preprocessing(20, md.crop, md.mean, md.std);
  tlkit::test::expect_error([&] { tlkit::pipeline::check_members_agree(resized); },
                            "disagree on the resize: 'a.pt' has 16 but 'd.pt' has 20");
}
