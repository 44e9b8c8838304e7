// Data parallelism at the library level: two ranks of a real Gloo process group (two threads of
// this process, rendezvous on 127.0.0.1) against one process with the whole batch.

#include <tlkit/train/distributed.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>

#include "support/test_support.h"

namespace {

using tlkit::train::Communicator;
using tlkit::train::DistributedEnv;
using tlkit::train::GradientAverager;

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool ok = fd >= 0 &&
                  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  if (fd >= 0) close(fd);
  return ok ? ntohs(address.sin_port) : 0;
}

// Runs body(comm) on `world` ranks at once, one thread each; rethrows the first rank's error.
void on_ranks(int world, const std::function<void(Communicator&)>& body) {
  const int port = free_port();
  ASSERT_GT(port, 0);
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<size_t>(world));
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        DistributedEnv env;
        env.rank = env.local_rank = rank;
        env.world_size = world;
        env.master_port = port;
        const auto comm = tlkit::train::connect(env, std::chrono::seconds(30));
        body(*comm);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(rank)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int rank = 0; rank < world; ++rank)
    EXPECT_EQ(errors[static_cast<size_t>(rank)], "") << "rank " << rank;
}

struct Net : torch::nn::Module {
  Net() {
    a = register_module("a", torch::nn::Linear(6, 16));
    b = register_module("b", torch::nn::Linear(16, 3));
  }
  at::Tensor forward(const at::Tensor& x) { return b(torch::tanh(a(x))); }
  torch::nn::Linear a{nullptr}, b{nullptr};
};

struct Data {
  at::Tensor x, y;
};

Data batches(int steps, std::int64_t batch) {
  torch::manual_seed(99);
  return {torch::randn({steps, batch, 6}), torch::randint(0, 3, {steps, batch}, torch::kLong)};
}

std::vector<at::Tensor> snapshot(Net& net) {
  std::vector<at::Tensor> out;
  for (const auto& p : net.parameters()) out.push_back(p.detach().clone());
  return out;
}

// Initial weights per rank (different on each: the broadcast from rank 0 must put them right)
// and the batches, made before any thread starts (torch's generator is shared by the threads).
struct Inputs {
  std::vector<std::vector<at::Tensor>> weights;
  Data data;
};

Inputs make_inputs(int ranks, int steps) {
  Inputs in;
  for (int r = 0; r < ranks; ++r) {
    torch::manual_seed(static_cast<std::uint64_t>(7 + r));
    Net net;
    in.weights.push_back(snapshot(net));
  }
  in.data = batches(steps, 8);
  return in;
}

// SGD with momentum on rows rank, rank + world, ... of each batch of 8. comm == nullptr: one
// process on the whole batch. average: the gradients are averaged over the ranks.
std::vector<at::Tensor> train(Communicator* comm, const Inputs& in, bool average,
                              std::int64_t bucket_bytes, bool overlap = false) {
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->world_size() : 1;
  Net net;
  {
    torch::NoGradGuard no_grad;
    const auto params = net.parameters();
    for (size_t i = 0; i < params.size(); ++i)
      params[i].copy_(in.weights[static_cast<size_t>(rank)][i]);
  }
  if (comm) tlkit::train::broadcast_tensors(*comm, net.parameters());
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.2).momentum(0.9));
  std::unique_ptr<GradientAverager> averager;
  if (comm) averager = std::make_unique<GradientAverager>(*comm, bucket_bytes);
  if (averager && overlap) averager->attach(net.parameters());
  const auto rows = torch::arange(rank, 8, world, torch::kLong);
  for (std::int64_t s = 0; s < in.data.x.size(0); ++s) {
    const auto x = in.data.x[s].index_select(0, rows), y = in.data.y[s].index_select(0, rows);
    sgd.zero_grad();
    at::cross_entropy_loss(net.forward(x), y).backward();
    if (averager && average) averager->average(net.parameters());
    sgd.step();
  }
  if (averager && average) {
    EXPECT_GT(averager->communication_seconds(), 0);
  }
  return snapshot(net);
}

double largest_difference(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double largest = 0;
  for (size_t i = 0; i < a.size(); ++i)
    largest = std::max(largest, (a[i] - b[i]).abs().max().item<double>());
  return largest;
}

bool bitwise_equal(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return a.size() == b.size();
}

}  // namespace

// 2 ranks x batch 4 with averaged gradients = 1 process x batch 8 (float rounding apart), the
// ranks bitwise identical, whatever the bucket size; without the allreduce (the negative
// control) the ranks drift apart and away from the one-process run.
TEST(Distributed, TwoRanksFollowOneProcessWithTwiceTheBatch) {
  TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
  const auto in = make_inputs(2, 6);
  const auto reference = train(nullptr, in, false, 0);
  ASSERT_GT(largest_difference(in.weights[0], in.weights[1]), 1e-2);  // they start apart
  for (const std::int64_t bucket : {std::int64_t{25} << 20, std::int64_t{64}}) {
    std::vector<std::vector<at::Tensor>> ranks(2);
    on_ranks(2, [&](Communicator& comm) {
      ranks[static_cast<size_t>(comm.rank())] = train(&comm, in, true, bucket);
    });
    ASSERT_FALSE(ranks[0].empty());
    ASSERT_FALSE(ranks[1].empty());
    EXPECT_TRUE(bitwise_equal(ranks[0], ranks[1])) << "bucket " << bucket;
    EXPECT_LT(largest_difference(ranks[0], reference), 1e-5) << "bucket " << bucket;
    EXPECT_GT(largest_difference(ranks[0], in.weights[0]), 1e-2);  // it trained
  }
  // Overlapped with backward (hooks, buckets in reverse order, started as they fill): bitwise
  // the same as after backward (a sum of two is the same in any order).
  std::vector<std::vector<at::Tensor>> after(2);
  on_ranks(2, [&](Communicator& comm) {
    after[static_cast<size_t>(comm.rank())] = train(&comm, in, true, 64);
  });
  for (const std::int64_t bucket : {std::int64_t{25} << 20, std::int64_t{64}, std::int64_t{700}}) {
    std::vector<std::vector<at::Tensor>> ranks(2);
    on_ranks(2, [&](Communicator& comm) {
      ranks[static_cast<size_t>(comm.rank())] = train(&comm, in, true, bucket, true);
    });
    ASSERT_FALSE(ranks[0].empty());
    EXPECT_TRUE(bitwise_equal(ranks[0], ranks[1])) << "overlapped, bucket " << bucket;
    EXPECT_TRUE(bitwise_equal(ranks[0], after[0])) << "overlapped, bucket " << bucket;
  }
  std::vector<std::vector<at::Tensor>> apart(2);
  on_ranks(2, [&](Communicator& comm) {
    apart[static_cast<size_t>(comm.rank())] = train(&comm, in, false, 25 << 20);
  });
  ASSERT_FALSE(apart[0].empty());
  EXPECT_FALSE(bitwise_equal(apart[0], apart[1]));
  EXPECT_GT(largest_difference(apart[0], reference), 1e-3);
  EXPECT_GT(largest_difference(apart[1], reference), 1e-3);
}

TEST(Distributed, CollectiveHelpersAgreeOnEveryRank) {
  TLKIT_SKIP_WITHOUT_DATA_PARALLEL();
  std::vector<std::string> strings(3);
  std::vector<std::vector<double>> sums(3);
  std::vector<at::Tensor> gathered(3);
  on_ranks(3, [&](Communicator& comm) {
    const auto r = static_cast<size_t>(comm.rank());
    strings[r] = tlkit::train::broadcast_string(comm, r == 1 ? "from rank one" : "", 1);
    sums[r] = tlkit::train::allreduce_sum(comm, {1.0, static_cast<double>(r), 0.5});
    // 7 rows sharded as row i on rank i % 3: rank 0 holds 0, 3, 6; rank 1 holds 1, 4; ...
    std::vector<float> mine;
    for (int i = static_cast<int>(r); i < 7; i += 3) mine.push_back(10.0f * i);
    const auto local = torch::tensor(mine).view({-1, 1});
    gathered[r] = tlkit::train::gather_sharded_rows(comm, local, 7);
    comm.barrier();
  });
  const auto expected = torch::arange(0, 70, 10, torch::kFloat).view({7, 1});
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(strings[r], "from rank one") << r;
    EXPECT_EQ(sums[r], (std::vector<double>{3.0, 3.0, 1.5})) << r;
    ASSERT_TRUE(gathered[r].defined()) << r;
    EXPECT_TRUE(torch::equal(gathered[r], expected)) << r << "\n" << gathered[r];
  }
}

// With data parallelism built, a group may be asked for; without it (TLKIT_WITH_DISTRIBUTED=OFF),
// asking for one, or joining a launcher's group, is one tlkit::Error that names the option.
TEST(Distributed, AskingForSeveralRanksMatchesTheBuild) {
  if (tlkit::train::data_parallel_available()) {
    EXPECT_NO_THROW(tlkit::train::require_data_parallel("--nproc 2"));
    return;
  }
  tlkit::test::expect_error([] { tlkit::train::require_data_parallel("--nproc 2"); },
                            "--nproc 2 needs data parallelism, but this tlkit was built without it "
                            "(the CMake option TLKIT_WITH_DISTRIBUTED=OFF");
  DistributedEnv env;
  env.rank = 1;
  env.world_size = 2;
  tlkit::test::expect_error([&] { tlkit::train::connect(env, std::chrono::seconds(1)); },
                            "rank 1 of a group of 2 processes (WORLD_SIZE=2) needs data parallelism");
}

// The launcher's variables: read whole, and a bad or missing one named.
TEST(Distributed, TheLaunchersEnvironmentIsCheckedAndNamed) {
  const auto set = [](const char* name, const char* value) {
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  };
  const auto clear = [&] {
    for (const auto* name : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                             "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT"})
      set(name, nullptr);
  };
  clear();
  EXPECT_FALSE(tlkit::train::distributed_env_from_environment().has_value());
  set("WORLD_SIZE", "4");
  set("RANK", "2");
  set("LOCAL_RANK", "0");
  set("MASTER_ADDR", "node7");
  set("MASTER_PORT", "29400");
  set("TORCHELASTIC_USE_AGENT_STORE", "True");
  set("TORCHELASTIC_RESTART_COUNT", "3");
  const auto env = tlkit::train::distributed_env_from_environment();
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->rank, 2);
  EXPECT_EQ(env->local_rank, 0);
  EXPECT_EQ(env->master_addr, "node7");
  EXPECT_EQ(env->master_port, 29400);
  EXPECT_TRUE(env->agent_store);
  EXPECT_EQ(env->store_prefix, "/worker/attempt_3");
  const auto error_of = [] {
    try {
      tlkit::train::distributed_env_from_environment();
    } catch (const tlkit::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  set("RANK", "4");
  EXPECT_NE(error_of().find("RANK='4'"), std::string::npos) << error_of();
  set("RANK", "1");
  set("MASTER_PORT", "http");
  EXPECT_NE(error_of().find("MASTER_PORT"), std::string::npos) << error_of();
  set("MASTER_PORT", nullptr);
  EXPECT_NE(error_of().find("MASTER_PORT is not set"), std::string::npos) << error_of();
  set("RANK", nullptr);
  set("MASTER_PORT", "29400");
  EXPECT_NE(error_of().find("RANK is not"), std::string::npos) << error_of();
  clear();
}
