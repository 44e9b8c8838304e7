// Gradient accumulation in the trainer: batch B accumulated over N micro-batches trains the same
// weights as batch B x N (a model without dropout or batch norm, float64), and everything that
// counts steps (callbacks, per-batch schedules, global_step) counts optimizer steps.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/schedule/lr_scheduler.h>
#include <tlkit/schedule/spec.h>
#include <tlkit/train/callback.h>
#include <tlkit/train/trainer.h>

#include "support/test_support.h"
#include "train/train_fixtures.h"

namespace tlkit::train {
namespace {

// Counts the hooks that run once per optimizer step.
struct StepCounter : Callback {
  std::string name() const override { return "step_counter"; }
  void on_before_optimizer_step(TrainContext&) override { ++before_step; }
  void on_batch_end(TrainContext& context) override {
    ++batch_end;
    last_batch_size = context.batch_size;
  }
  std::int64_t before_step = 0, batch_end = 0, last_batch_size = 0;
};

struct Run {
  std::vector<at::Tensor> weights;
  std::int64_t steps = 0;
  double lr = 0;
  std::shared_ptr<StepCounter> counter;
  std::vector<Metrics> history;
};

// 20 images of the 3-class blobs in float64, in a fixed order (no shuffle): batch 12 gives steps
// of 12 and 8 images; batch 4 accumulated 3 times gives 4+4+4 and 4+4 (the epoch's last step
// takes the 2 batches left, each scaled by 1/2).
Run train(std::int64_t batch, std::int64_t accumulate, double clip = 0) {
  auto [x, y] = test::blobs(7, 3);
  x = x.narrow(0, 0, 20).to(at::kDouble);
  y = y.narrow(0, 0, 20);
  torch::manual_seed(5);
  auto mlp =
      torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::Tanh(), torch::nn::Linear(8, 3));
  mlp->to(at::kDouble);
  auto network = ModuleNetwork::from(mlp);
  torch::optim::SGD sgd(network->trainable_parameters(),
                        torch::optim::SGDOptions(0.3).momentum(0.9));
  TrainerOptions options;
  options.epochs = 3;
  options.num_classes = 3;
  options.progress = false;
  options.accumulate = accumulate;
  options.grad_clip_norm = clip;
  options.schedule_step = ScheduleStep::kPerBatch;
  options.loss.label_smoothing = 0.1;
  Trainer trainer(*network, sgd, options);
  trainer.set_scheduler(schedule::make_scheduler("step:step_size=2,gamma=0.5", sgd));
  Run run;
  run.counter = std::make_shared<StepCounter>();
  trainer.add_callback(run.counter);
  TensorBatchSource source(x, y, batch, /*shuffle=*/false);
  run.history = trainer.fit(source).history;
  for (const auto& p : mlp->parameters()) run.weights.push_back(p.detach().clone());
  run.steps = trainer.global_step();
  run.lr = trainer.learning_rates().front();
  return run;
}

double largest_difference(const Run& a, const Run& b) {
  double largest = 0;
  for (size_t i = 0; i < a.weights.size(); ++i)
    largest = std::max(largest, (a.weights[i] - b.weights[i]).abs().max().item<double>());
  return largest;
}

// Float64 sums in another order: equal to ~1e-15; 1e-10 leaves room and is far below the 1e-2
// that a missing 1/N scale, a step per micro-batch or a lost micro-batch makes.
constexpr double kTolerance = 1e-10;

TEST(Accumulate, BatchBTimesNTrainsTheWeightsOfBatchBN) {
  const auto whole = train(12, 1);
  const auto accumulated = train(4, 3);
  EXPECT_LT(largest_difference(whole, accumulated), kTolerance);
  // Counted in optimizer steps: 2 per epoch, so the per-batch schedule halved the lr 3 times.
  EXPECT_EQ(whole.steps, 6);
  EXPECT_EQ(accumulated.steps, 6);
  EXPECT_EQ(accumulated.counter->before_step, 6);
  EXPECT_EQ(accumulated.counter->batch_end, 6);
  EXPECT_EQ(accumulated.counter->last_batch_size, 8);  // the epoch's last step: 2 batches of 4
  EXPECT_DOUBLE_EQ(accumulated.lr, whole.lr);
  EXPECT_DOUBLE_EQ(accumulated.lr, 0.3 * 0.125);
  // The epoch's loss and accuracy are over its images, as with the whole batch.
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(accumulated.history[e].at("train_loss"), whole.history[e].at("train_loss"),
                kTolerance);
    EXPECT_EQ(accumulated.history[e].at("train_acc"), whole.history[e].at("train_acc"));
  }
  // Clipping sees the accumulated gradient: clipped runs agree too, and differ from unclipped.
  const auto clipped = train(4, 3, 0.05);
  EXPECT_LT(largest_difference(train(12, 1, 0.05), clipped), kTolerance);
  EXPECT_GT(largest_difference(clipped, accumulated), 1e-3);
  // Negative control: batch 4 stepped after every batch is a different trajectory.
  EXPECT_GT(largest_difference(whole, train(4, 1)), 1e-2);
}

TEST(Accumulate, OneStepsEveryBatchAndZeroIsRefused) {
  EXPECT_EQ(train(4, 1).steps, 15);  // 5 batches x 3 epochs
  auto network = test::tiny_network(1);
  torch::optim::SGD sgd(network->parameters(), torch::optim::SGDOptions(0.1));
  TrainerOptions options;
  options.num_classes = 3;
  options.accumulate = 0;
  test::expect_error([&] { Trainer trainer(*network, sgd, options); }, "accumulate must be >= 1");
}

}  // namespace
}  // namespace tlkit::train
