// RunConfig (defaults, JSON round trip, one validation) and the builders' resolution rules: torch's
// default learning rates, the preprocessing precedence (flag > model > default), "auto" schedules.

#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/config.h>

#include <functional>
#include <regex>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/optim/adam.h>
#include <tlkit/optim/factory.h>
#include <tlkit/schedule/spec.h>
#include <tlkit/optim/settings.h>

#include "support/test_support.h"

using tlkit::pipeline::RunConfig;

namespace {

using tlkit::test::expect_error;

}  // namespace

// The defaults torch.optim's constructors declare, read from Python torch itself.
TEST(RunConfig, DefaultLearningRatesAreTorchs) {
  const auto result = tlkit::test::run_command(
      tlkit::test::torch_python() +
      " -c \"import inspect, torch.optim as o; "
      "print(' '.join('%s=%r' % (n, inspect.signature(getattr(o, c)).parameters['lr'].default) for "
      "n, c in "
      "[('adam','Adam'),('adamw','AdamW'),('adagrad','Adagrad'),('rmsprop','RMSprop')]))\"");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::smatch match;
  for (const auto* name : {"adam", "adamw", "adagrad", "rmsprop"}) {
    ASSERT_TRUE(
        std::regex_search(result.output, match, std::regex(std::string(name) + "=([0-9.e-]+)")))
        << result.output;
    EXPECT_DOUBLE_EQ(tlkit::optim::default_lr(name).value(), std::stod(match[1])) << name;
    EXPECT_DOUBLE_EQ(tlkit::pipeline::base_lr(name), std::stod(match[1])) << name;
  }
  // SGD has no default in torch, nor here: the message says what to write.
  EXPECT_FALSE(tlkit::optim::default_lr("sgd").has_value());
  expect_error([] { tlkit::pipeline::base_lr("momentum"); }, "momentum:lr=");
}

// The lr of a spec without lr= reaches every parameter group (it used to be 0.01 whatever the
// optimizer), and per-group rates keep their ratios.
TEST(RunConfig, BuildOptimizerGivesEachGroupItsOwnLr) {
  auto a = torch::zeros({2, 2}).requires_grad_(), b = torch::zeros({3, 1}).requires_grad_();
  const double lr = tlkit::pipeline::base_lr("adam");
  auto optimizer = tlkit::pipeline::build_optimizer(
      "adam:weight_decay=0.1", {{"top", lr, {"a"}, {a}}, {"below", lr / 2, {"b"}, {b}}});
  ASSERT_EQ(optimizer->param_groups().size(), 2u);
  const auto* top =
      dynamic_cast<const tlkit::optim::AdamOptions*>(&optimizer->param_groups()[0].options());
  ASSERT_NE(top, nullptr);
  EXPECT_DOUBLE_EQ(top->lr(), 1e-3);
  EXPECT_DOUBLE_EQ(top->weight_decay(), 0.1);
  EXPECT_DOUBLE_EQ(optimizer->param_groups()[1].options().get_lr(), 5e-4);
}

// Weight decay leaves biases and normalisation weights (1-d parameters) out by default, as timm's
// and fastai's: each group splits in two at the same lr; --decay-all puts it back.
TEST(RunConfig, WeightDecaySkipsBiasesAndNormWeightsUnlessDecayAll) {
  auto weight = torch::ones({3, 2}).requires_grad_(), bias = torch::ones({3}).requires_grad_(),
       norm = torch::ones({3}).requires_grad_(), head = torch::ones({2, 3}).requires_grad_();
  const std::vector<tlkit::model::ParamGroupSpec> groups{
      {"body", 1e-3, {"w", "b", "n"}, {weight, bias, norm}}, {"head", 1e-2, {"h"}, {head}}};
  const auto decay = [](const torch::optim::OptimizerParamGroup& g) {
    return tlkit::optim::weight_decay_of(g.options());
  };
  // AdamW decays by default (torch's 1e-2): body splits into decayed and not; head has no 1-d.
  auto optimizer = tlkit::pipeline::build_optimizer("adamw", groups);
  auto& built = optimizer->param_groups();
  ASSERT_EQ(built.size(), 3u);
  EXPECT_EQ(built[0].params().size(), 1u);  // body's weight
  EXPECT_DOUBLE_EQ(decay(built[0]), 1e-2);
  EXPECT_EQ(built[1].params().size(), 2u);  // body's bias and norm weight
  EXPECT_DOUBLE_EQ(decay(built[1]), 0);
  EXPECT_DOUBLE_EQ(built[1].options().get_lr(), 1e-3);
  EXPECT_DOUBLE_EQ(decay(built[2]), 1e-2);
  EXPECT_DOUBLE_EQ(built[2].options().get_lr(), 1e-2);
  // One step with zero gradients: only the decayed weights shrink (AdamW: p *= 1 - lr * wd).
  for (auto& p : {weight, bias, norm, head}) p.mutable_grad() = torch::zeros_like(p);
  optimizer->step();
  EXPECT_NEAR(weight[0][0].item<double>(), 1 - 1e-3 * 1e-2, 1e-7);  // float32
  EXPECT_NEAR(head[0][0].item<double>(), 1 - 1e-2 * 1e-2, 1e-7);
  EXPECT_EQ(bias[0].item<double>(), 1);
  EXPECT_EQ(norm[0].item<double>(), 1);
  // --decay-all: the groups as given, every parameter decayed.
  auto all = tlkit::pipeline::build_optimizer("adamw", groups, /*decay_all=*/true);
  ASSERT_EQ(all->param_groups().size(), 2u);
  EXPECT_DOUBLE_EQ(decay(all->param_groups()[0]), 1e-2);
  // Without weight decay nothing splits (Adam's default is 0).
  EXPECT_EQ(tlkit::pipeline::build_optimizer("adam", groups)->param_groups().size(), 2u);
  EXPECT_EQ(tlkit::pipeline::build_optimizer("sgd:lr=0.1,weight_decay=5e-4", groups)
                ->param_groups()
                .size(),
            3u);
}

TEST(RunConfig, JsonRoundTripKeepsEveryField) {
  auto config = RunConfig::defaults("finetune");
  config.model = "m.pt";
  config.out = "runs/x";
  config.data.source = "cifar10:/data";
  config.data.seed = 42;
  config.data.limit = 100;
  config.data.preprocess.input_size = 32;
  config.data.preprocess.mean = {0.5};
  config.fit.optimizer = "adamw:weight_decay=0.05";
  config.fit.monitor = "val_acc";
  config.fit.min_delta = 0.25;
  config.fit.on_nonfinite = "skip";
  config.head.from = "classifier.0";
  config.head.batch_size = 17;
  config.lr_decay = 0.75;
  config.lr_floor = 0.05;
  config.fit.label_smoothing = 0.1;
  config.fit.class_weights = "1,2.5";
  config.data.sampler = "balanced";
  config.fit.accumulate = 3;
  config.fit.mixup = 0.2;
  config.fit.cutmix = 1;
  config.fit.mix_off_epoch = 4;
  config.fit.grad_clip_mode = "agc";
  config.fit.decay_all = true;
  config.data.augment_policy = "rand:2,9";
  config.data.random_erasing = 0.25;
  config.data.erasing_value = "random";
  const auto json = config.to_json();
  const auto back = RunConfig::from_json(tlkit::Json::parse(json.dump(2)));
  EXPECT_EQ(back.to_json().dump(), json.dump());
  EXPECT_EQ(back.data.preprocess.mean, std::vector<double>{0.5});
  EXPECT_EQ(back.head.batch_size, 17);
  EXPECT_EQ(back.fit.label_smoothing, 0.1);
  EXPECT_EQ(back.fit.class_weights, "1,2.5");
  EXPECT_EQ(back.data.sampler, "balanced");
  EXPECT_EQ(back.fit.accumulate, 3);
  EXPECT_EQ(back.fit.mixup, 0.2);
  EXPECT_EQ(back.fit.cutmix, 1);
  EXPECT_EQ(back.fit.mix_off_epoch, 4);
  EXPECT_EQ(json.at("fit").at("mix_prob").as_double(), 1.0);
  EXPECT_EQ(back.fit.grad_clip_mode, "agc");
  EXPECT_TRUE(back.fit.decay_all);
  EXPECT_EQ(back.data.augment_policy, "rand:2,9");
  EXPECT_EQ(back.data.random_erasing, 0.25);
  EXPECT_EQ(back.data.erasing_value, "random");
  EXPECT_EQ(json.at("data").at("augment_policy").as_string(), "rand:2,9");
  // A resume may not change them; the conflict names the flag.
  auto changed = back;
  changed.data.augment_policy = "trivial";
  changed.data.random_erasing = 0;
  const auto conflicts = changed.resume_conflicts(back);
  ASSERT_EQ(conflicts.size(), 2u);
  EXPECT_EQ(conflicts[0], "--augment: the run used \"rand:2,9\", now \"trivial\"");
  EXPECT_EQ(conflicts[1].rfind("--random-erasing: the run used 0.25", 0), 0u) << conflicts[1];
  // A config written before these settings existed: off.
  const auto older = RunConfig::from_json(tlkit::Json::parse("{\"command\": \"train\"}"));
  EXPECT_EQ(older.data.augment_policy, "none");
  EXPECT_EQ(older.data.random_erasing, 0);
  EXPECT_EQ(json.at("fit").at("label_smoothing").as_double(), 0.1);
  // Missing keys keep the command's defaults; unknown keys and wrong types are errors.
  const auto sparse = RunConfig::from_json(
      tlkit::Json::parse("{\"command\": \"train\", \"fit\": {\"epochs\": 3}}"));
  EXPECT_EQ(sparse.fit.epochs, 3);
  EXPECT_EQ(sparse.data.batch_size, RunConfig::defaults("train").data.batch_size);
  EXPECT_EQ(sparse.lr_floor, RunConfig::defaults("finetune").lr_floor);
  EXPECT_FALSE(sparse.fit.decay_all);
  // A config.json tlkit wrote before a setting existed reads as that tlkit behaved, so --resume
  // continues the run as it started: every layer trained, weight decay on every parameter.
  const auto written = RunConfig::from_json(tlkit::Json::parse(
      "{\"format\": \"tlkit-run-config\", \"version\": 1, \"command\": \"finetune\"}"));
  EXPECT_EQ(written.lr_floor, 0);
  EXPECT_TRUE(written.fit.decay_all);
  EXPECT_EQ(written.data.augment_policy, "none");
  EXPECT_EQ(back.lr_floor, config.lr_floor);
  expect_error([] { RunConfig::from_json(tlkit::Json::parse("{\"fit\": {\"lr\": 3}}")); },
               "unknown setting 'fit.lr'");
  expect_error([] { RunConfig::from_json(tlkit::Json::parse("{\"data\": {\"limit\": -1}}")); },
               "data.limit");
  expect_error([] { RunConfig::from_json(tlkit::Json::parse("{\"command\": \"serve\"}")); },
               "unknown run command");
}

TEST(RunConfig, ValidateNamesTheBadOption) {
  tlkit::test::TempDir dir;
  tlkit::write_file_atomic(dir / "m.pt", "stand-in");
  auto good = RunConfig::defaults("finetune");
  good.model = dir / "m.pt";
  good.out = dir / "run";
  good.data.source = (dir / "data").string();
  EXPECT_NO_THROW(good.validate());
  auto balanced = good;
  balanced.fit.monitor = "val_balanced_acc";
  EXPECT_NO_THROW(balanced.validate());
  const std::vector<std::pair<std::function<void(RunConfig&)>, std::string>> cases = {
      {[](RunConfig& c) { c.fit.epochs = -1; }, "--epochs"},
      {[](RunConfig& c) { c.fit.patience = -2; }, "--patience"},
      {[](RunConfig& c) { c.fit.monitor = "loss"; }, "--monitor"},
      {[](RunConfig& c) { c.fit.optimizer = "momentum"; }, "needs lr"},
      {[](RunConfig& c) { c.fit.schedule = "cosine:T_max=x"; }, "stage 2"},
      {[](RunConfig& c) { c.head.optimizer = "adamm"; }, "stage 1"},
      {[](RunConfig& c) { c.data.workers = 100000; }, "--workers"},
      {[](RunConfig& c) { c.fit.grad_clip = -1; }, "--grad-clip"},
      {[](RunConfig& c) { c.fit.overfit_batches = -1; }, "--overfit-batches"},
      {[](RunConfig& c) { c.fit.on_nonfinite = "ignore"; }, "--on-nonfinite"},
      {[](RunConfig& c) { c.fit.label_smoothing = -0.1; }, "--label-smoothing must be in [0, 1)"},
      {[](RunConfig& c) { c.fit.label_smoothing = 1; }, "--label-smoothing must be in [0, 1)"},
      {[](RunConfig& c) { c.fit.class_weights = "balanced"; }, "--class-weights"},
      {[](RunConfig& c) { c.fit.mixup = -0.2; }, "--mixup must be a Beta alpha >= 0"},
      {[](RunConfig& c) { c.fit.mix_prob = 2; }, "--mix-prob must be a probability in [0, 1]"},
      {[](RunConfig& c) { c.fit.class_weights = "1,0"; }, "positive"},
      {[](RunConfig& c) { c.data.sampler = "weighted"; }, "--sampler must be shuffle or balanced"},
      {[](RunConfig& c) { c.fit.accumulate = 0; }, "--accumulate must be in [1, 4096]"},
      {[](RunConfig& c) { c.fit.grad_clip_mode = "l2"; }, "--grad-clip-mode must be norm, value"},
      {[](RunConfig& c) { c.fit.monitor = "val_balanced"; }, "val_balanced_acc"},
      {[](RunConfig& c) { c.data.augment_policy = "rand:3"; }, "--augment: augmentation 'rand:3'"},
      {[](RunConfig& c) { c.data.augment_policy = "foo"; }, "--augment: unknown augmentation"},
      {[](RunConfig& c) { c.data.random_erasing = 1.5; }, "--random-erasing must be a probability"},
      {[](RunConfig& c) { c.data.erasing_value = "1"; }, "--erasing-value must be 0 or random"},
      {[](RunConfig& c) {
         c.data.preprocess.std = {0, 1, 1};
       },
       "--std"},
      {[](RunConfig& c) { c.data.preprocess.input_size = 64, c.data.preprocess.resize = 32; },
       "--resize"},
      {[](RunConfig& c) { c.lr_decay = 0; }, "--lr-decay"},
      {[](RunConfig& c) { c.lr_floor = 1; }, "--lr-floor"},
      {[](RunConfig& c) { c.resume = true; }, "cannot resume"},
      {[&](RunConfig& c) { c.model = dir / "missing.pt"; }, "no such file"},
  };
  for (const auto& [change, part] : cases) {
    auto config = good;
    change(config);
    expect_error([&] { config.validate(); }, part);
  }
}

TEST(Preprocessing, FlagsOverrideTheModelWhichOverridesTheDefaults) {
  tlkit::model::ModelMetadata none;  // a file without tlkit metadata
  auto p = tlkit::pipeline::resolve_preprocessing(none, {});
  EXPECT_EQ(p.input_size, 224);
  EXPECT_EQ(p.resize, 256);
  EXPECT_EQ(p.input_size_from, "default");
  // --input-size alone on a model without metadata: the whole image, no crop margin.
  tlkit::pipeline::PreprocessOptions flags;
  flags.input_size = 32;
  flags.mean = {0.5};
  flags.std = {0.5};
  p = tlkit::pipeline::resolve_preprocessing(none, flags);
  EXPECT_EQ(p.input_size, 32);
  EXPECT_EQ(p.resize, 32);
  EXPECT_EQ(p.resize_from, "from --input-size");
  EXPECT_EQ(p.mean, (std::array<double, 3>{0.5, 0.5, 0.5}));
  EXPECT_EQ(p.std_from, "flag");
  // A model with metadata keeps its own resize/crop ratio for a new input size.
  tlkit::model::ModelMetadata vgg;
  vgg.present = true;
  vgg.crop = 224;
  vgg.resize = 256;
  p = tlkit::pipeline::resolve_preprocessing(vgg, flags);
  EXPECT_EQ(p.resize, 37);  // round(32 * 256 / 224)
  EXPECT_EQ(tlkit::pipeline::resolve_preprocessing(vgg, {}).resize_from, "model");
  flags.resize = 40;
  EXPECT_EQ(tlkit::pipeline::resolve_preprocessing(vgg, flags).resize, 40);
  EXPECT_NE(tlkit::pipeline::resolve_preprocessing(vgg, flags).describe().find("resize 40 (flag)"),
            std::string::npos);
}

TEST(Schedules, AutoIsThreeWarmRestartCyclesOfWholeEpochs) {
  using tlkit::schedule::auto_spec;
  EXPECT_EQ(auto_spec({9, 1}), "restarts:T_0=3");
  EXPECT_EQ(auto_spec({2, 1}), "restarts:T_0=1");
  // Stepped per batch (4 steps an epoch) the cycles are the same 2 epochs: T_0 counts steps (it
  // was 2 steps, 12 cycles over the run).
  EXPECT_EQ(auto_spec({6 * 4, 4}), "restarts:T_0=8");
  EXPECT_EQ(auto_spec({7 * 4, 4}), "restarts:T_0=8");
}
