#include <tlkit/train/callbacks.h>
#include <tlkit/train/ema_callback.h>
#include <tlkit/train/trainer.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <tlkit/core/error.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/interrupt.h>
#include <tlkit/schedule/cosine.h>

#include <csignal>

#include "support/log_capture.h"
#include "support/test_support.h"
#include "train/train_fixtures.h"

using namespace tlkit::train;

namespace {
TrainerOptions quiet_options(std::int64_t epochs) {
  TrainerOptions options;
  options.epochs = epochs;
  options.num_classes = 3;
  options.progress = false;
  return options;
}
}  // namespace

TEST(Trainer, LearnsASeparableProblem) {
  auto network = tlkit::test::tiny_network(7);
  auto [x, y] = tlkit::test::blobs(60, 1);
  auto [vx, vy] = tlkit::test::blobs(30, 2);
  TensorBatchSource train(x, y, 16, true, 7), val(vx, vy, 64, false);
  torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  Trainer trainer(*network, optimizer, quiet_options(15));
  const auto before = trainer.evaluate(val);
  const auto result = trainer.fit(train, &val);
  EXPECT_EQ(result.epochs_run, 15);
  EXPECT_TRUE(result.stop_reason.empty());
  const auto after = trainer.evaluate(val);
  EXPECT_LT(after.loss, before.loss * 0.5);
  EXPECT_GT(after.accuracy, 0.9);
  EXPECT_EQ(result.history.back().at("epoch"), 15);
  EXPECT_TRUE(result.history.back().get("lr_group0").has_value());
}

TEST(Trainer, OverfitsATinySubset) {
  auto network = tlkit::test::tiny_network(3);
  auto [x, y] = tlkit::test::blobs(40, 5);
  y = torch::randint(0, 3, {y.size(0)},
                     torch::kLong);  // random labels: only memorisation fits them
  auto all = std::make_shared<TensorBatchSource>(x, y, 8, true, 3);
  RepeatFirstBatches tiny(all, 2);
  torch::optim::Adam optimizer(network->parameters(), torch::optim::AdamOptions(0.02));
  Trainer trainer(*network, optimizer, quiet_options(150));
  trainer.fit(tiny, &tiny);
  EXPECT_EQ(trainer.history().back().at("val_acc"), 1.0);  // 16 examples memorised
}

// A network, plain SGD and blobs whose first example holds a NaN, in batches of `batch`
// (60 = one batch for the whole set; smaller: only the first batch is bad).
struct NanProblem {
  explicit NanProblem(std::int64_t batch) {
    auto [x, y] = tlkit::test::blobs(20, 5);
    x[0][0] = std::numeric_limits<float>::quiet_NaN();
    train = std::make_unique<TensorBatchSource>(x, y, batch, false);
  }
  std::shared_ptr<ModuleNetwork> network = tlkit::test::tiny_network(3);
  torch::optim::SGD optimizer{network->parameters(), torch::optim::SGDOptions(0.1)};
  std::unique_ptr<TensorBatchSource> train;
};

TEST(Trainer, NonFiniteLossStopsWithAClearMessage) {
  NanProblem p(60);
  auto& network = p.network;
  auto options = quiet_options(2);
  options.label = "stage 1 (head on features)";
  Trainer trainer(*network, p.optimizer, options);
  trainer.add_callback(
      std::make_shared<NonFiniteGuard>(NonFinitePolicy::kStop, 10, "--head-optimizer"));
  const auto before = clone_state(*network);
  try {
    trainer.fit(*p.train);
    FAIL() << "expected tlkit::Error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("learning rate"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not applied"), std::string::npos) << e.what();
    // The stage that blew up and its own flag, not another stage's.
    EXPECT_NE(std::string(e.what()).find("in stage 1 (head on features)"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("--head-optimizer"), std::string::npos) << e.what();
  }
  // The guard acts before the update: the NaN step left every weight as it was.
  const auto after = clone_state(*network);
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_TRUE(torch::equal(before[i].second, after[i].second)) << before[i].first;
}

// Negative control for the test above: without the guard the same NaN batch reaches the weights.
TEST(Trainer, WithoutTheGuardANaNStepReachesTheWeights) {
  NanProblem p(60);
  auto& network = p.network;
  Trainer trainer(*network, p.optimizer, quiet_options(1));
  trainer.fit(*p.train);
  bool any_nan = false;
  for (const auto& p : network->parameters()) any_nan = any_nan || p.isnan().any().item<bool>();
  EXPECT_TRUE(any_nan);
}

// --on-nonfinite skip: the bad batch's step is not applied and training goes on.
TEST(Trainer, SkipPolicyLeavesTheWeightsOfABadStepUnchanged) {
  NanProblem p(10);  // only the first of several batches is bad
  auto& network = p.network;
  Trainer trainer(*network, p.optimizer, quiet_options(1));
  auto guard = std::make_shared<NonFiniteGuard>(NonFinitePolicy::kSkip);
  trainer.add_callback(guard);
  trainer.fit(*p.train);
  EXPECT_EQ(guard->skipped(), 1);
  for (const auto& p : network->parameters()) EXPECT_FALSE(p.isnan().any().item<bool>());
}

// Stands for an update that made the weights NaN with a finite loss and gradient (a huge lr).
struct BreakWeightsAfterUpdate : tlkit::train::Callback {
  std::string name() const override { return "break_weights"; }
  void on_batch_end(tlkit::train::TrainContext& context) override {
    torch::NoGradGuard no_grad;
    context.network.trainable_parameters().front().fill_(std::nanf(""));
  }
};

// Weights an update broke are caught at the epoch's end, before a checkpoint, the best weights or
// the rollback state keep them: the run stops naming them, or rolls back to finite weights.
TEST(Trainer, WeightsAnUpdateBrokeAreCaughtBeforeAnythingKeepsThem) {
  auto [x, y] = tlkit::test::blobs(20, 5);
  TensorBatchSource train(x, y, 60, false);  // one step an epoch
  {
    auto network = tlkit::test::tiny_network(3);
    torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.1));
    Trainer trainer(*network, optimizer, quiet_options(2));
    tlkit::test::TempDir dir;
    trainer.add_callback(std::make_shared<BreakWeightsAfterUpdate>());
    trainer.add_callback(std::make_shared<tlkit::train::Checkpoint>(dir / "checkpoints"));
    trainer.add_callback(std::make_shared<NonFiniteGuard>());
    tlkit::test::expect_error([&] { trainer.fit(train); }, "made the weights NaN/Inf");
    EXPECT_FALSE(std::filesystem::exists(dir / "checkpoints" / "last.pt"));  // never kept
  }
  auto network = tlkit::test::tiny_network(3);
  torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.1));
  Trainer trainer(*network, optimizer, quiet_options(1));
  trainer.add_callback(std::make_shared<BreakWeightsAfterUpdate>());
  auto guard = std::make_shared<NonFiniteGuard>(NonFinitePolicy::kRollback);
  trainer.add_callback(guard);
  trainer.fit(train);
  EXPECT_EQ(guard->rollbacks(), 1);
  for (const auto& p : network->parameters()) EXPECT_TRUE(p.isfinite().all().item<bool>());
}

TEST(Trainer, InitialLossCheckAcceptsLnCAndFlagsOthers) {
  auto [x, y] = tlkit::test::blobs(20, 5);
  TensorBatchSource train(x, y, 60, false);
  for (const float scale : {0.0f, 50.0f}) {
    auto network = tlkit::test::tiny_network(3);
    {
      torch::NoGradGuard no_grad;
      network->parameters()[2].mul_(
          scale);  // fc2.weight: 0 -> uniform predictions, 50 -> overconfident
    }
    torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.0));
    Trainer trainer(*network, optimizer, quiet_options(1));
    auto check = std::make_shared<InitialLossCheck>(3);
    trainer.add_callback(check);
    trainer.fit(train);
    ASSERT_TRUE(check->plausible().has_value());
    EXPECT_EQ(*check->plausible(), scale == 0.0f);
  }
}

TEST(Trainer, WritesCsvAndTensorBoardEvents) {
  tlkit::test::TempDir dir;
  auto network = tlkit::test::tiny_network(3);
  auto [x, y] = tlkit::test::blobs(20, 5);
  TensorBatchSource train(x, y, 16, true, 1), val(x, y, 64, false);
  torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.05));
  Trainer trainer(*network, optimizer, quiet_options(3));
  trainer.add_callback(std::make_shared<CsvLogger>(dir / "metrics.csv"));
  trainer.add_callback(std::make_shared<TensorBoardLogger>(dir.path()));
  trainer.fit(train, &val);
  const std::string csv = tlkit::read_file(dir / "metrics.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "epoch,train_loss,train_acc,lr_group0,val_loss,val_acc");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);
  std::string events;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      events = entry.path().string();
  ASSERT_FALSE(events.empty());
  const auto read = tlkit::test::run_command(
      tlkit::test::torch_python() + " " +
      (tlkit::test::source_dir() / "scripts/read_tfevents.py").string() + " " + events);
  ASSERT_EQ(read.exit_code, 0) << read.output;
  EXPECT_NE(read.output.find("val/acc,3,"), std::string::npos) << read.output;
  EXPECT_NE(read.output.find("lr/group0,1,0.0500000007"), std::string::npos) << read.output;
}

// val_every 3 over 8 epochs: validated after epochs 1, 3, 6 and 8 (the first, every third, the
// last), the model and its EMA alike; the other rows have empty val cells. Early stopping still
// counts epochs since the best, and training is the same as with every epoch validated.
TEST(Trainer, ValidatesEveryNthEpochAndTheFirstAndLast) {
  auto [x, y] = tlkit::test::blobs(20, 5);
  auto run = [&](std::int64_t every, const std::filesystem::path& csv) {
    auto network = tlkit::test::tiny_network(3);
    TensorBatchSource train(x, y, 8, true, 1), val(x, y, 64, false);
    torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.05));
    auto options = quiet_options(8);
    options.val_every = every;
    Trainer trainer(*network, optimizer, options);
    trainer.add_callback(std::make_shared<EmaCallback>(*network, &val, 3, EMAOptions().decay(0.9)));
    trainer.add_callback(std::make_shared<CsvLogger>(csv));
    auto result = trainer.fit(train, &val);
    return std::make_pair(result, clone_state(*network));
  };
  tlkit::test::TempDir dir;
  const auto [sparse, sparse_weights] = run(3, dir / "sparse.csv");
  const auto [dense, dense_weights] = run(1, dir / "dense.csv");
  ASSERT_EQ(sparse.history.size(), 8u);
  for (std::int64_t epoch = 1; epoch <= 8; ++epoch) {
    const auto& metrics = sparse.history[static_cast<size_t>(epoch - 1)];
    const bool validated = epoch == 1 || epoch == 3 || epoch == 6 || epoch == 8;
    EXPECT_EQ(metrics.get("val_loss").has_value(), validated) << epoch;
    EXPECT_EQ(metrics.get("ema_val_loss").has_value(), validated) << epoch;
    if (validated) {
      EXPECT_DOUBLE_EQ(*metrics.get("val_loss"),
                       *dense.history[static_cast<size_t>(epoch - 1)].get("val_loss"))
          << epoch;
    }
  }
  for (size_t i = 0; i < dense_weights.size(); ++i)
    EXPECT_TRUE(torch::equal(sparse_weights[i].second, dense_weights[i].second));
  std::vector<std::string> rows;
  std::istringstream csv(tlkit::read_file(dir / "sparse.csv"));
  for (std::string line; std::getline(csv, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 9u);
  EXPECT_EQ(rows[0],
            "epoch,train_loss,train_acc,lr_group0,val_loss,val_acc,ema_val_loss,ema_val_acc");
  EXPECT_EQ(rows[2].substr(rows[2].size() - 4), ",,,,") << rows[2];  // epoch 2: not validated

  // Patience 2 with validation every 3 epochs: a run that stops improving stops at the first
  // validated epoch 2 or more epochs after its best, not after 2 more validations.
  auto network = tlkit::test::tiny_network(3);
  TensorBatchSource train(x, y, 8, true, 1), val(x, y, 64, false);
  torch::optim::SGD frozen(network->parameters(), torch::optim::SGDOptions(0.0));
  auto options = quiet_options(20);
  options.val_every = 3;
  Trainer trainer(*network, frozen, options);
  trainer.add_callback(std::make_shared<EarlyStopping>(EarlyStoppingOptions{2}));
  const auto stopped = trainer.fit(train, &val);
  // lr 0: the loss never changes, so the best is epoch 1 and epoch 3 is 2 epochs later.
  EXPECT_EQ(stopped.epochs_run, 3) << stopped.stop_reason;

  options.val_every = 0;
  EXPECT_THROW(Trainer(*network, frozen, options), tlkit::Error);
}

// Resume: 3 epochs, checkpoint, fresh objects, resume, 3 more == 6 uninterrupted epochs, bit for
// bit (dropout draws from the global RNG, momentum buffers live in the optimizer, early stopping
// counts).
TEST(Trainer, ResumeIsBitIdentical) {
  tlkit::test::TempDir dir;
  auto blobs = tlkit::test::blobs(30, 9);
  auto x = blobs.first, y = blobs.second;  // (lambdas below capture them)
  auto run = [&](std::int64_t epochs, const std::filesystem::path* resume_from, bool checkpoint) {
    auto network = tlkit::test::tiny_network(11);
    TensorBatchSource train(x, y, 8, true, 5), val(x, y, 64, false);
    torch::optim::SGD optimizer(network->parameters(),
                                torch::optim::SGDOptions(0.05).momentum(0.9));
    Trainer trainer(*network, optimizer, quiet_options(epochs));
    trainer.add_callback(std::make_shared<EarlyStopping>(EarlyStoppingOptions{50}));
    if (checkpoint) {
      trainer.add_callback(std::make_shared<Checkpoint>(dir / "checkpoints"));
      trainer.add_callback(std::make_shared<BestWeights>(dir / "checkpoints" / "best.pt"));
    }
    if (resume_from)
      trainer.resume(*resume_from);
    else
      torch::manual_seed(1234);
    trainer.fit(train, &val);
    return std::make_pair(clone_state(*network), trainer.history());
  };
  const auto [uninterrupted, full_history] = run(6, nullptr, false);
  run(3, nullptr, true);
  const auto last = dir / "checkpoints" / "last.pt";
  ASSERT_TRUE(std::filesystem::exists(last));
  ASSERT_TRUE(std::filesystem::exists(dir / "checkpoints" / "best.pt"));
  const auto [resumed, resumed_history] = run(6, &last, true);
  ASSERT_EQ(resumed.size(), uninterrupted.size());
  for (size_t i = 0; i < resumed.size(); ++i)
    EXPECT_TRUE(torch::equal(resumed[i].second, uninterrupted[i].second)) << resumed[i].first;
  ASSERT_EQ(resumed_history.size(), 6u);
  EXPECT_EQ(resumed_history.back().at("val_loss"), full_history.back().at("val_loss"));
}

TEST(Trainer, ResumeRejectsAForeignFile) {
  tlkit::test::TempDir dir;
  tlkit::write_file_atomic(dir / "junk.pt", "not a checkpoint");
  auto network = tlkit::test::tiny_network(1);
  torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(0.1));
  Trainer trainer(*network, optimizer, quiet_options(1));
  EXPECT_THROW(trainer.resume(dir / "junk.pt"), tlkit::Error);
}

// A signal in the middle of an epoch (raised here by a callback at a fixed step, as the handler
// would): the step in hand finishes, last.pt is written at that step, tlkit::Interrupted is thrown;
// a resume from that file continues with the next batch, and the run ends bit for bit where an
// uninterrupted one does (weights, per-batch schedule, momentum, dropout RNG, every epoch's
// metrics including the interrupted epoch's train loss and learning rate).
namespace {
struct RaiseSignalAt : Callback {
  RaiseSignalAt(std::int64_t step, int signal) : step(step), signal(signal) {}
  std::string name() const override { return "raise_signal"; }
  void on_batch_end(TrainContext& context) override {
    if (context.global_step == step) tlkit::set_interrupt_signal(signal);
  }
  std::int64_t step;
  int signal;
};
}  // namespace

TEST(Trainer, ASignalMidEpochLeavesACheckpointThatResumesBitIdentically) {
  tlkit::test::TempDir dir;
  auto blobs = tlkit::test::blobs(30, 9);
  auto x = blobs.first, y = blobs.second;  // (lambdas below capture them)  // 90 examples, batch 8:
                                           // 12 batches per epoch
  auto run = [&](std::int64_t interrupt_at, bool resume) {
    auto network = tlkit::test::tiny_network(11);
    TensorBatchSource train(x, y, 8, true, 5), val(x, y, 64, false);
    torch::optim::SGD optimizer(network->parameters(),
                                torch::optim::SGDOptions(0.05).momentum(0.9));
    auto options = quiet_options(4);
    options.schedule_step = ScheduleStep::kPerBatch;
    Trainer trainer(*network, optimizer, options);
    trainer.set_scheduler(
        std::make_shared<tlkit::schedule::CosineAnnealingLR>(optimizer, 4 * 12, 0.001));
    trainer.add_callback(std::make_shared<Checkpoint>(dir / "checkpoints"));
    if (interrupt_at > 0)
      trainer.add_callback(std::make_shared<RaiseSignalAt>(interrupt_at, SIGINT));
    if (resume)
      trainer.resume(dir / "checkpoints" / "last.pt");
    else
      torch::manual_seed(1234);
    trainer.fit(train, &val);
    return std::make_pair(clone_state(*network), trainer.history());
  };
  const auto [uninterrupted, full_history] = run(0, false);

  // Step 17 = batch 5 of epoch 2.
  try {
    run(17, false);
    FAIL() << "expected tlkit::Interrupted";
  } catch (const tlkit::Interrupted& e) {
    EXPECT_EQ(e.signal(), SIGINT);
    const std::string message = e.what();
    EXPECT_TRUE(tlkit::test::contains(message, "SIGINT")) << message;
    EXPECT_TRUE(tlkit::test::contains(message, "epoch 2/4 after batch 5 of 12")) << message;
    EXPECT_TRUE(tlkit::test::contains(message, "--resume")) << message;
  }
  // The file holds the position in the epoch (what makes the resume below exact).
  {
    torch::serialize::InputArchive archive;
    archive.load_from((dir / "checkpoints" / "last.pt").string());
    c10::IValue batch;
    ASSERT_TRUE(archive.try_read("epoch_batch", batch));
    EXPECT_EQ(batch.toInt(), 5);
  }

  tlkit::set_interrupt_signal(0);
  const auto [resumed, resumed_history] = run(0, true);
  ASSERT_EQ(resumed.size(), uninterrupted.size());
  for (size_t i = 0; i < resumed.size(); ++i)
    EXPECT_TRUE(torch::equal(resumed[i].second, uninterrupted[i].second)) << resumed[i].first;
  ASSERT_EQ(resumed_history.size(), full_history.size());
  for (size_t e = 0; e < full_history.size(); ++e)
    for (const auto& [name, value] : full_history[e].items())
      EXPECT_EQ(resumed_history[e].at(name), value) << name << " of epoch " << e + 1;

  // A signal at an epoch's end stops there; the checkpoint starts the next epoch.
  try {
    run(24, false);
    FAIL() << "expected tlkit::Interrupted";
  } catch (const tlkit::Interrupted& e) {
    EXPECT_TRUE(tlkit::test::contains(e.what(), "after epoch 2/4")) << e.what();
  }
  tlkit::set_interrupt_signal(0);
  const auto [resumed2, history2] = run(0, true);
  for (size_t i = 0; i < resumed2.size(); ++i)
    EXPECT_TRUE(torch::equal(resumed2[i].second, uninterrupted[i].second)) << resumed2[i].first;
  EXPECT_EQ(history2.size(), full_history.size());
}

// Finite but absurd losses (logits scaled by 1e7: every wrong prediction costs ~1e7) are warned
// about once, with the stage and the flag; a sane run is not.
TEST(Trainer, AbsurdFiniteLossesAreWarnedAbout) {
  auto [x, y] = tlkit::test::blobs(20, 3);
  for (const double scale : {1e7, 1.0}) {
    torch::manual_seed(2);
    auto linear = std::make_shared<torch::nn::LinearImpl>(4, 3);
    auto network = std::make_shared<ModuleNetwork>(
        linear, [linear, scale](const torch::Tensor& in) { return linear->forward(in) * scale; });
    torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(1e-12));
    TensorBatchSource train(x, y, 10, true, 1);
    Trainer trainer(*network, optimizer, quiet_options(3));
    trainer.add_callback(std::make_shared<NonFiniteGuard>());
    tlkit::test::LogCapture capture;
    trainer.fit(train);
    const auto log = capture.text();
    const bool warned = log.find("blown up without becoming NaN") != std::string::npos;
    EXPECT_EQ(warned, scale > 1) << log;
    if (scale > 1) {
      EXPECT_NE(log.find("--optimizer"), std::string::npos) << log;
      EXPECT_EQ(log.find("blown up"), log.rfind("blown up")) << "warned once: " << log;
    }
  }
}

// --on-nonfinite rollback: an lr that blows the weights up is caught before the update, the
// weights, optimizer state and schedule go back to the last good epoch's end and the lr halves,
// until it trains; with the stop policy the same run fails (the control).
TEST(Trainer, RollbackRestoresTheLastGoodStateAndHalvesTheLr) {
  auto blobs = tlkit::test::blobs(30, 4);
  auto x = blobs.first, y = blobs.second;  // (lambdas below capture them)
  x = x * 1e3;                             // large inputs: at lr 10 the first steps overflow
  auto run = [&](NonFinitePolicy policy, std::shared_ptr<NonFiniteGuard>* guard_out) {
    auto network = tlkit::test::tiny_network(5);
    torch::optim::SGD optimizer(network->parameters(), torch::optim::SGDOptions(10).momentum(0.9));
    TensorBatchSource train(x, y, 10, true, 2);
    Trainer trainer(*network, optimizer, quiet_options(4));
    auto schedule = std::make_shared<tlkit::schedule::CosineAnnealingLR>(optimizer, 4);
    trainer.set_scheduler(schedule);
    auto guard = std::make_shared<NonFiniteGuard>(policy, 40);
    trainer.add_callback(guard);
    if (guard_out) *guard_out = guard;
    trainer.fit(train);
    for (const auto& p : network->parameters()) EXPECT_TRUE(p.isfinite().all().item<bool>());
    return schedule->base_lrs().front();
  };
  EXPECT_THROW(run(NonFinitePolicy::kStop, nullptr), tlkit::Error);
  std::shared_ptr<NonFiniteGuard> guard;
  tlkit::test::LogCapture capture;
  const double base_lr = run(NonFinitePolicy::kRollback, &guard);
  ASSERT_GE(guard->rollbacks(), 1);
  EXPECT_NE(capture.text().find("rolled back"), std::string::npos) << capture.text();
  // The schedule itself was lowered, once per rollback.
  EXPECT_DOUBLE_EQ(base_lr, 10 * std::pow(0.5, static_cast<double>(guard->rollbacks())));
}
