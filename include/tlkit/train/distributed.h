#pragma once
// Data parallelism on PyTorch's own distributed engine, c10d (Gloo on CPU; NCCL on CUDA where
// LibTorch was built with it). This header stays free of c10d: the process group lives behind
// Communicator, and every LibTorch-version difference lives in src/train/c10d_compat.h.
//
// A distributed run is N processes, each holding the whole model and 1/N of every batch. The
// process with rank 0 writes every file (checkpoints, exports, logs, reports); every process
// computes every decision from the same, reduced numbers, so all ranks stay bitwise identical.
// tlkit starts the processes itself (`--nproc N`) or is started by torchrun or any launcher that
// sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace tlkit::train {

struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent hosts the store, every rank is a client
  // (under the prefix "/worker/attempt_<TORCHELASTIC_RESTART_COUNT>").
  bool agent_store = false;
  std::string store_prefix;
  std::string socket_interface;  // GLOO_SOCKET_IFNAME: the network interface Gloo binds to
};

// The launcher's environment, or nullopt when WORLD_SIZE is unset. Throws a tlkit::Error naming
// the variable for missing or inconsistent values (RANK outside [0, WORLD_SIZE), a bad port, ...).
std::optional<DistributedEnv> distributed_env_from_environment();

// A collective started but not yet waited for.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;  // throws like the blocking call would
};

// A process group: collectives over every rank, each blocking until done on this rank. Tensors
// are reduced in place; they must be contiguous and on the group's device. A peer that dies makes
// the call throw a tlkit::Error (at once, or after the timeout for a peer that hangs).
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;  // "gloo" or "nccl"

  virtual void allreduce_sum(std::vector<at::Tensor>& tensors) = 0;
  // Starts summing `tensor` in place over the ranks and returns at once (the backend's threads do
  // the work); the tensor must not be touched before wait(). Every rank must start the same
  // collectives in the same order. The default runs the blocking call.
  virtual std::unique_ptr<PendingCollective> allreduce_sum_async(const at::Tensor& tensor);
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root) = 0;
  // outputs[r] receives rank r's `input` (equal shapes on every rank).
  virtual void allgather(const at::Tensor& input, std::vector<at::Tensor>& outputs) = 0;
  virtual void barrier() = 0;
};

// False in a tlkit built with the CMake option TLKIT_WITH_DISTRIBUTED=OFF (without c10d and Gloo):
// connect() then throws, and everything else here works for the one process there is.
bool data_parallel_available();
// Throws a tlkit::Error, saying that `what` (e.g. "--nproc 2") needs data parallelism and how to
// get it, when !data_parallel_available().
void require_data_parallel(const std::string& what);

// Connects to the group described by `env`: rank 0 hosts the TCP store at MASTER_ADDR:MASTER_PORT
// (unless the launcher's agent does), every rank joins, Gloo (or NCCL for `backend` "nccl")
// connects them. `timeout` bounds the rendezvous and every later collective.
std::shared_ptr<Communicator> connect(const DistributedEnv& env, std::chrono::milliseconds timeout,
                                      const std::string& backend = "gloo");

// The process's group, when it runs as one rank of several: set once by the application (the CLI
// does it when the launcher's variables are set), read by the trainer, the loaders' sharding and
// every file writer. Null when not distributed.
void set_world(std::shared_ptr<Communicator> world);
Communicator* world();
// Rank and size of the process's group (0 and 1 when not distributed).
int world_rank();
int world_size();
// True for the process that writes files and logs: rank 0, or the only process.
bool is_main_process();

// The signal the ranks stop on (0: none), from the sum of their signal numbers: the one they all
// got when they agree, else SIGTERM (a launcher forwards one signal to all, so a mix means
// something else stopped us, or it has not reached every rank yet).
int agreed_signal(double signal_sum, int world_size);
// This process's interrupt signal (tlkit::interrupt_signal()) agreed over the ranks of world():
// any rank's signal stops every rank, at the same point. Not distributed: the local one.
int agreed_interrupt_signal();

// ------------------------------------------------------------------ helpers over a Communicator
// Broadcasts `tensors` from `root` in place, flattened into one buffer per dtype.
void broadcast_tensors(Communicator& comm, const std::vector<at::Tensor>& tensors, int root = 0);
// Sums `values` over the ranks (in double; exact for counts below 2^53).
std::vector<double> allreduce_sum(Communicator& comm, std::vector<double> values);
// Rank `root`'s string on every rank.
std::string broadcast_string(Communicator& comm, const std::string& text, int root = 0);
// Rows of a [n, ...] tensor sharded as shard_rows(n, world, rank) (row i on rank i % world),
// gathered into the full [n, ...] tensor, in the original row order, on every rank.
at::Tensor gather_sharded_rows(Communicator& comm, const at::Tensor& local, std::int64_t n);

// Whether trainers overlap the gradient allreduce with backward (GradientAverager::attach) or
// run it after backward; process-wide, default true (the CLI's --allreduce sets it).
void set_overlap_allreduce(bool overlap);
bool overlap_allreduce();

// Averages gradients over the ranks: gradients flattened into buckets of about `bucket_bytes`
// (per dtype and device), summed in one allreduce per bucket and divided by the world size. The
// flat buffers are kept between steps. Two ways:
//  - after backward: average(parameters) does it all for their defined gradients;
//  - overlapped (attach(parameters) once): buckets are made in reverse parameter order (roughly
//    the order backward produces gradients; the first one closes at 1 MB, as torch's DDP does,
//    so that its allreduce starts early), a hook on each parameter copies its gradient into
//    its bucket during backward, and a full bucket's allreduce starts at once (in bucket order,
//    the same on every rank) while backward goes on; average() then starts what is left (the
//    gradients of parameters that got none are zeros), waits, and writes the averages into the
//    gradients. Either way every rank ends with the same, bitwise identical, gradients.
class GradientAverager {
 public:
  explicit GradientAverager(Communicator& comm, std::int64_t bucket_bytes = 25 << 20);
  ~GradientAverager();
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;

  // Overlapped mode for these parameters (leaf tensors that require grad); the hooks stay until
  // detach() or destruction. Call average() after every backward of them.
  void attach(const std::vector<at::Tensor>& parameters);
  void detach();
  bool attached() const { return !slots_.empty(); }

  void average(const std::vector<at::Tensor>& parameters);
  // Seconds a step spent in allreduce calls (overlapped: waiting for them after backward) so far.
  double communication_seconds() const { return comm_seconds_; }

 private:
  struct Slot {
    at::Tensor parameter;
    size_t bucket = 0;
    std::int64_t offset = 0;
    bool ready = false;
    unsigned hook = 0;
  };
  struct Bucket {
    at::Tensor flat;
    std::vector<size_t> slots;
    size_t ready = 0;
    std::unique_ptr<PendingCollective> pending;
  };
  void on_gradient(size_t slot, const at::Tensor& grad);
  void launch_ready_buckets();
  void launch(Bucket& bucket);

  Communicator& comm_;
  std::int64_t bucket_bytes_;
  std::vector<at::Tensor> buffers_;  // after-backward mode
  std::vector<Slot> slots_;          // overlapped mode
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  double comm_seconds_ = 0;
};

}  // namespace tlkit::train
