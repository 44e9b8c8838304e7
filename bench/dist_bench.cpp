// dist_bench: what one gradient allreduce costs by message size, on tlkit's c10d process group
// (Gloo), against a plain copy of the same bytes in this process (the memory-bandwidth side of
// the same message). Started as N ranks by a launcher (bench/data_parallel.sh starts 2 on
// 127.0.0.1; torchrun --no_python works too); rank 0 prints a Markdown table.
//
//   RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 build/bench/dist_bench &
//   RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 build/bench/dist_bench
//
// Each size: 2 untimed allreduces, then --runs timed ones (a barrier before each, so every rank
// starts together); the table gives the median and the bus bandwidth 2 (N-1)/N x bytes / time
// (the convention of nccl-tests: what each rank's link carried).

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <tlkit/core/error.h>
#include <tlkit/train/distributed.h>

#include "bench_util.h"

int main(int argc, char** argv) {
  int runs = 9;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: (started as ranks, see the top of dist_bench.cpp) %s [--runs N]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    const auto env = tlkit::train::distributed_env_from_environment();
    TLKIT_CHECK(env && env->world_size >= 2,
                "dist_bench runs as >= 2 ranks: set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT "
                "(bench/data_parallel.sh does)");
    at::set_num_threads(1);
    auto comm = tlkit::train::connect(*env, std::chrono::seconds(120));
    const double n = comm->world_size();
    if (comm->rank() == 0) {
      std::printf(
          "| message | allreduce (median of %d) | bus bandwidth | copy of the same bytes | "
          "allreduce / copy |\n|---:|---:|---:|---:|---:|\n",
          runs);
    }
    for (const std::int64_t bytes :
         {std::int64_t{4} << 10, std::int64_t{64} << 10, std::int64_t{1} << 20,
          std::int64_t{4} << 20, std::int64_t{25} << 20, std::int64_t{100} << 20}) {
      auto buffer = at::ones({bytes / 4});
      auto target = at::empty_like(buffer);
      std::vector<at::Tensor> one{buffer};
      tlkit::bench::Samples reduce, copy;
      for (int r = 0; r < runs + 2; ++r) {
        comm->barrier();
        const double ms = tlkit::bench::time_ms([&] { comm->allreduce_sum(one); });
        if (r >= 2) reduce.add(ms);
        const double copy_ms = tlkit::bench::time_ms([&] { target.copy_(buffer); });
        if (r >= 2) copy.add(copy_ms);
      }
      if (comm->rank() != 0) continue;
      const double seconds = reduce.median() / 1000;
      const double bus = 2 * (n - 1) / n * static_cast<double>(bytes) / seconds / 1e9;
      const std::string size = bytes >= (1 << 20) ? std::to_string(bytes >> 20) + " MB"
                                                  : std::to_string(bytes >> 10) + " KB";
      std::printf("| %s | %.3f ms | %.2f GB/s | %.3f ms | %.0fx |\n", size.c_str(), reduce.median(),
                  bus, copy.median(), reduce.median() / copy.median());
    }
    comm->barrier();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
