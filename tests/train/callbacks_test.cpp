#include <tlkit/schedule/cosine.h>
#include <tlkit/train/callbacks.h>
#include <tlkit/train/trainer.h>

#include <cmath>

#include <gtest/gtest.h>

#include <tlkit/core/error.h>

#include "support/test_support.h"
#include "train/train_fixtures.h"

using namespace tlkit::train;

namespace {
TrainerOptions ten_epochs_three_classes() {
  TrainerOptions options;
  options.epochs = 10;
  options.num_classes = 3;
  return options;
}

// A trainer whose context callbacks can be driven by hand with scripted metrics.
struct Harness {
  std::shared_ptr<ModuleNetwork> network = tlkit::test::tiny_network(1);
  torch::optim::SGD optimizer{network->parameters(), torch::optim::SGDOptions(0.1)};
  Trainer trainer{*network, optimizer, ten_epochs_three_classes()};
  TrainContext context{trainer, *network, optimizer};
};
}  // namespace

// Drives one epoch end by hand as the trainer does: the monitor is updated first, then the
// callback.
bool end_epoch(Harness& h, MetricTracker& tracker, Callback& callback, int e,
               const std::string& metric, double value) {
  h.context.epoch = e;
  h.context.metrics.clear();
  h.context.metrics.set("epoch", e + 1);
  h.context.metrics.set(metric, value);
  h.context.monitor = &tracker;
  h.context.improved = tracker.update(h.context.metrics);
  return callback.on_epoch_end(h.context);
}

TEST(EarlyStopping, FiresAtTheRightEpochOnAScriptedSequence) {
  Harness h;
  MetricTracker tracker("val_loss", Mode::kAuto, /*min_delta=*/0.02);
  EarlyStopping early({/*patience=*/3});
  // epoch:     1    2     3     4     5     6
  const double losses[] = {1.0, 0.8, 0.85, 0.79, 0.9, 0.5};
  // 0.79 is not better than 0.8 by more than min_delta: epochs 3, 4, 5 fail -> stop after epoch 5.
  int stopped_after = 0;
  for (int e = 0; e < 6 && !stopped_after; ++e)
    if (end_epoch(h, tracker, early, e, "val_loss", losses[e])) stopped_after = e + 1;
  EXPECT_EQ(stopped_after, 5);
  EXPECT_EQ(early.stopped_epoch().value_or(-1), 5);
  EXPECT_EQ(tracker.best_epoch(), 2);
  EXPECT_DOUBLE_EQ(*tracker.best(), 0.8);
  EXPECT_NE(h.context.stop_reason.find("did not improve for 3 epochs"), std::string::npos);
}

TEST(EarlyStopping, MaximisesAccuracyAutomatically) {
  Harness h;
  MetricTracker tracker("val_acc");
  EarlyStopping early({2});
  const double accuracy[] = {0.5, 0.6, 0.6, 0.55};
  int stopped_after = 0;
  for (int e = 0; e < 4 && !stopped_after; ++e)
    if (end_epoch(h, tracker, early, e, "val_acc", accuracy[e])) stopped_after = e + 1;
  EXPECT_EQ(stopped_after, 4);
  EXPECT_EQ(tracker.best_epoch(), 2);
}

TEST(EarlyStopping, RejectsBadPatienceAndUnknownMetric) {
  EXPECT_THROW(EarlyStopping({0}), tlkit::Error);
  Harness h;
  MetricTracker tracker("val_loss");
  EarlyStopping early;
  h.context.metrics.set("train_loss", 1.0);
  h.context.monitor = &tracker;
  try {
    early.on_epoch_end(h.context);
    FAIL() << "expected tlkit::Error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("val_loss"), std::string::npos) << e.what();
  }
}

// The best weights are kept once, by BestWeights: in memory and in best.pt (weights only, with the
// epoch), restored at the end when asked; early stopping and the checkpoint hold none.
TEST(BestWeights, KeepsTheMonitoredBestOnceAndRestoresIt) {
  Harness h;
  tlkit::test::TempDir dir;
  MetricTracker tracker("val_loss");
  BestWeights best(dir / "best.pt", /*restore_at_end=*/true);
  const double losses[] = {1.0, 0.7, 0.9, 0.8};
  for (int e = 0; e < 4; ++e) {
    {
      torch::NoGradGuard no_grad;
      h.network->parameters()[0].fill_(static_cast<float>(e));  // a recognisable weight per epoch
    }
    end_epoch(h, tracker, best, e, "val_loss", losses[e]);
  }
  EXPECT_EQ(best.epoch(), 2);
  std::int64_t file_epoch = -1;
  const auto on_disk = load_state(dir / "best.pt", &file_epoch);
  EXPECT_EQ(file_epoch, 2);
  EXPECT_TRUE(torch::all(on_disk.front().second == 1.0f).item<bool>());
  best.on_train_end(h.context);
  EXPECT_TRUE(torch::all(h.network->parameters()[0] == 1.0f).item<bool>());
  // Its checkpoint state is the epoch and a file name, and load() reads the weights back.
  torch::serialize::OutputArchive archive;
  best.save(archive);
  std::stringstream bytes;
  archive.save_to(bytes);
  EXPECT_LT(bytes.str().size(), 2000u);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  BestWeights restored(dir / "best.pt");
  restored.load(in);
  EXPECT_EQ(restored.epoch(), 2);
  ASSERT_EQ(restored.weights().size(), best.weights().size());
  EXPECT_TRUE(torch::equal(restored.weights().front().second, best.weights().front().second));
}

// Checkpoint writers run after every other callback, whatever the registration order.
TEST(Trainer, RunsCheckpointWritersLast) {
  Harness h;
  tlkit::test::TempDir dir;
  h.trainer.add_callback(std::make_shared<Checkpoint>(dir / "c"));
  h.trainer.add_callback(std::make_shared<BestWeights>());
  h.trainer.add_callback(std::make_shared<EarlyStopping>());
  h.trainer.add_callback(std::make_shared<CsvLogger>(dir / "m.csv"));
  std::vector<std::string> names;
  for (const auto& callback : h.trainer.callbacks()) names.push_back(callback->name());
  EXPECT_EQ(names, (std::vector<std::string>{"early_stopping", "csv_logger", "best_weights",
                                             "checkpoint"}));
}

TEST(SnapshotEnsemble, SnapshotAtEachRestartAndAveragesSoftmax) {
  Harness h;
  SnapshotEnsemble snapshots;
  snapshots.on_train_begin(h.context);
  const double lrs[] = {0.1, 0.05, 0.01, 0.1, 0.05, 0.01, 0.1};  // restarts after epochs 3 and 6
  for (int e = 0; e < 7; ++e) {
    h.optimizer.param_groups()[0].options().set_lr(lrs[e]);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : h.network->parameters()) p.add_(0.1f * static_cast<float>(e));
    }
    h.context.epoch = e - 1;  // the lr set at the start of epoch e is seen at the end of epoch e-1
    snapshots.on_epoch_end(h.context);
  }
  ASSERT_EQ(snapshots.snapshots().size(), 2u);
  EXPECT_EQ(snapshots.snapshot_epochs(), (std::vector<std::int64_t>{3, 6}));

  // The ensemble's prediction is the mean of the members' softmax outputs.
  auto [x, y] = tlkit::test::blobs(10, 3);
  TensorBatchSource source(x, y, 7, false);
  const auto evaluation = evaluate_ensemble(*h.network, snapshots.snapshots(), source, 3);
  const auto own = clone_state(*h.network);
  torch::Tensor mean_probability = torch::zeros({x.size(0), 3}, torch::kDouble);
  h.network->train(false);
  for (const auto& member : snapshots.snapshots()) {
    copy_state(*h.network, member);
    torch::NoGradGuard no_grad;
    // Forwarded in the source's batches of 7: a float32 matrix product may round differently
    // at another batch size (BLAS kernels differ by shape and CPU), and the rule is the subject.
    std::vector<torch::Tensor> logits;
    for (std::int64_t start = 0; start < x.size(0); start += 7)
      logits.push_back(
          h.network->forward(x.slice(0, start, std::min<std::int64_t>(start + 7, x.size(0)))));
    mean_probability += torch::softmax(torch::cat(logits).to(torch::kDouble), 1) / 2.0;
  }
  copy_state(*h.network, own);
  const double expected_loss = torch::nll_loss(mean_probability.log(), y).item<double>();
  const double expected_acc =
      mean_probability.argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(evaluation.loss, expected_loss, 1e-12);
  EXPECT_DOUBLE_EQ(evaluation.accuracy, expected_acc);
  EXPECT_EQ(evaluation.examples, 30);
  // The network's own weights are untouched by the ensemble evaluation.
  const auto after = clone_state(*h.network);
  for (size_t i = 0; i < own.size(); ++i) EXPECT_TRUE(torch::equal(own[i].second, after[i].second));
}

TEST(SnapshotEnsemble, AWarmupRiseIsNotARestart) {
  Harness h;
  SnapshotEnsemble snapshots;
  h.optimizer.param_groups()[0].options().set_lr(0.01);
  snapshots.on_train_begin(h.context);
  // warm-up 0.01 -> 0.1, decay to 0.02, restart to 0.1 after epoch 6, decay again
  const double lrs[] = {0.04, 0.07, 0.1, 0.06, 0.02, 0.1, 0.05};
  for (int e = 0; e < 7; ++e) {
    h.optimizer.param_groups()[0].options().set_lr(lrs[e]);
    h.context.epoch = e;
    snapshots.on_epoch_end(h.context);
  }
  EXPECT_EQ(snapshots.snapshot_epochs(), (std::vector<std::int64_t>{6}));
}

// The epochs (1-based) after which a SnapshotEnsemble snapshots when `sgdr` is stepped per epoch.
std::vector<std::int64_t> sgdr_snapshot_epochs(std::int64_t T_0, std::int64_t T_mult, int epochs) {
  Harness h;
  tlkit::schedule::CosineAnnealingWarmRestarts sgdr(h.optimizer, T_0, T_mult);
  h.context.scheduler = &sgdr;
  SnapshotEnsemble snapshots;
  snapshots.on_train_begin(h.context);
  for (int e = 0; e < epochs; ++e) {
    sgdr.step();
    h.context.epoch = e;
    snapshots.on_epoch_end(h.context);
  }
  return snapshots.snapshot_epochs();
}

TEST(SnapshotEnsemble, FollowsTheScheduleCyclesEvenWhenTheLrRepeats) {
  // SGDR with one-epoch cycles stepped per epoch: the lr is the same at every epoch start, so only
  // the schedule's cycle count shows the restarts.
  EXPECT_EQ(sgdr_snapshot_epochs(1, 1, 4), (std::vector<std::int64_t>{1, 2, 3, 4}));
  // T_0 = 2, T_mult = 2: cycles of 2, 4, 8 epochs end after epochs 2 and 6 of 8.
  EXPECT_EQ(sgdr_snapshot_epochs(2, 2, 8), (std::vector<std::int64_t>{2, 6}));
}

TEST(Metrics, ConfusionMatrixAndPerClassAccuracy) {
  EvaluationAccumulator accumulator(3);
  // predictions: argmax of these scores -> 0, 1, 1, 2 ; targets 0, 1, 2, 2
  auto scores = torch::tensor({{5.0, 0.0, 0.0}, {0.0, 5.0, 0.0}, {0.0, 5.0, 0.0}, {0.0, 0.0, 5.0}});
  accumulator.add_log_probabilities(torch::log_softmax(scores, 1), torch::tensor({0, 1, 2, 2}));
  const auto evaluation = accumulator.result();
  EXPECT_DOUBLE_EQ(evaluation.accuracy, 0.75);
  EXPECT_EQ(evaluation.confusion[2][1].item<std::int64_t>(), 1);
  EXPECT_EQ(evaluation.confusion[2][2].item<std::int64_t>(), 1);
  EXPECT_EQ(evaluation.per_class_accuracy(), (std::vector<double>{1.0, 1.0, 0.5}));
  EXPECT_THROW(accumulator.add_log_probabilities(torch::zeros({2, 4}), torch::tensor({0, 1})),
               tlkit::Error);
}
