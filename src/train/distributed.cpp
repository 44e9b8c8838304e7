#include <tlkit/train/distributed.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>
#include <tlkit/core/interrupt.h>

namespace tlkit::train {
namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return std::nullopt;
  return std::string(value);
}

int env_int(const char* name, const std::string& text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text.c_str(), &end, 10);
  TLKIT_CHECK(!text.empty() && end && *end == '\0' && errno == 0 && value >= lo && value <= hi,
              "the environment variable ", name, "='", text, "' must be an integer in [", lo, ", ",
              hi, "]");
  return static_cast<int>(value);
}

std::mutex world_mutex;
std::shared_ptr<Communicator> world_instance;
std::atomic<bool> overlap_setting{true};

class DonePending final : public PendingCollective {
 public:
  void wait() override {}
};

}  // namespace

std::unique_ptr<PendingCollective> Communicator::allreduce_sum_async(const at::Tensor& tensor) {
  std::vector<at::Tensor> one{tensor};
  allreduce_sum(one);
  return std::make_unique<DonePending>();
}

void set_overlap_allreduce(bool overlap) { overlap_setting = overlap; }
bool overlap_allreduce() { return overlap_setting; }

void require_data_parallel(const std::string& what) {
  TLKIT_CHECK(data_parallel_available(), what,
              " needs data parallelism, but this tlkit was built without it (the CMake option "
              "TLKIT_WITH_DISTRIBUTED=OFF: no c10d and Gloo): run it as one process, or rebuild "
              "tlkit with -DTLKIT_WITH_DISTRIBUTED=ON (Gloo's headers: Debian's libgloo-dev)");
}

std::optional<DistributedEnv> distributed_env_from_environment() {
  const auto world = env("WORLD_SIZE");
  if (!world) return std::nullopt;
  DistributedEnv e;
  e.world_size = env_int("WORLD_SIZE", *world, 1, 1 << 20);
  const auto rank = env("RANK");
  TLKIT_CHECK(rank.has_value(), "WORLD_SIZE is set but RANK is not: a launcher sets both");
  e.rank = env_int("RANK", *rank, 0, e.world_size - 1);
  e.local_rank = env_int("LOCAL_RANK", env("LOCAL_RANK").value_or(*rank), 0, e.world_size - 1);
  e.master_addr = env("MASTER_ADDR").value_or("127.0.0.1");
  TLKIT_CHECK(!e.master_addr.empty(), "the environment variable MASTER_ADDR is empty");
  if (const auto port = env("MASTER_PORT")) {
    e.master_port = env_int("MASTER_PORT", *port, 1, 65535);
  } else {
    TLKIT_CHECK(e.world_size == 1, "WORLD_SIZE=", e.world_size,
                " but MASTER_PORT is not set: a launcher sets MASTER_ADDR and MASTER_PORT");
  }
  const auto agent = env("TORCHELASTIC_USE_AGENT_STORE").value_or("");
  e.agent_store = agent == "True" || agent == "true" || agent == "1";
  if (e.agent_store)
    e.store_prefix = "/worker/attempt_" + env("TORCHELASTIC_RESTART_COUNT").value_or("0");
  e.socket_interface = env("GLOO_SOCKET_IFNAME").value_or("");
  return e;
}

void set_world(std::shared_ptr<Communicator> world) {
  std::lock_guard<std::mutex> lock(world_mutex);
  world_instance = std::move(world);
}

Communicator* world() {
  std::lock_guard<std::mutex> lock(world_mutex);
  return world_instance && world_instance->world_size() > 1 ? world_instance.get() : nullptr;
}

int world_rank() {
  auto* w = world();
  return w ? w->rank() : 0;
}

int world_size() {
  auto* w = world();
  return w ? w->world_size() : 1;
}

bool is_main_process() { return world_rank() == 0; }

int agreed_signal(double signal_sum, int world_size) {
  if (signal_sum <= 0) return 0;
  const double each = signal_sum / static_cast<double>(world_size);
  return each == std::floor(each) && (each == SIGINT || each == SIGTERM) ? static_cast<int>(each)
                                                                         : SIGTERM;
}

int agreed_interrupt_signal() {
  const int signal = interrupt_signal();
  auto* comm = world();
  if (!comm) return signal;
  return agreed_signal(allreduce_sum(*comm, {static_cast<double>(signal)})[0], comm->world_size());
}

// ------------------------------------------------------------------ helpers
namespace {

// Tensors grouped by (dtype, device), in their order: one flat buffer per group.
std::map<std::string, std::vector<at::Tensor>> by_kind(const std::vector<at::Tensor>& tensors) {
  std::map<std::string, std::vector<at::Tensor>> groups;
  for (const auto& t : tensors)
    if (t.defined() && t.numel() > 0)
      groups[std::string(c10::toString(t.scalar_type())) + "/" + t.device().str()].push_back(t);
  return groups;
}

at::Tensor flatten(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> flat;
  flat.reserve(tensors.size());
  for (const auto& t : tensors) flat.push_back(t.detach().reshape({-1}));
  return at::cat(flat);
}

void unflatten_into(const at::Tensor& flat, const std::vector<at::Tensor>& tensors) {
  at::NoGradGuard no_grad;
  std::int64_t offset = 0;
  for (const auto& t : tensors) {
    const auto n = t.numel();
    t.detach().copy_(flat.slice(0, offset, offset + n).view(t.sizes()));
    offset += n;
  }
}

}  // namespace

void broadcast_tensors(Communicator& comm, const std::vector<at::Tensor>& tensors, int root) {
  for (auto& [kind, group] : by_kind(tensors)) {
    std::vector<at::Tensor> flat{flatten(group)};
    comm.broadcast(flat, root);
    unflatten_into(flat.front(), group);
  }
}

std::vector<double> allreduce_sum(Communicator& comm, std::vector<double> values) {
  if (values.empty()) return values;
  std::vector<at::Tensor> t{at::from_blob(values.data(), {static_cast<std::int64_t>(values.size())},
                                          at::TensorOptions().dtype(at::kDouble))
                                .clone()};
  comm.allreduce_sum(t);
  std::memcpy(values.data(), t.front().data_ptr<double>(), values.size() * sizeof(double));
  return values;
}

std::string broadcast_string(Communicator& comm, const std::string& text, int root) {
  std::vector<at::Tensor> size{
      at::full({1}, static_cast<std::int64_t>(text.size()), at::TensorOptions().dtype(at::kLong))};
  comm.broadcast(size, root);
  const auto n = size.front().item<std::int64_t>();
  std::vector<at::Tensor> bytes{at::zeros({std::max<std::int64_t>(n, 1)}, at::kByte)};
  if (comm.rank() == root && n > 0) std::memcpy(bytes.front().data_ptr(), text.data(), text.size());
  comm.broadcast(bytes, root);
  return std::string(static_cast<const char*>(bytes.front().data_ptr()), static_cast<size_t>(n));
}

at::Tensor gather_sharded_rows(Communicator& comm, const at::Tensor& local, std::int64_t n) {
  const auto size = comm.world_size();
  const auto rows = (n + size - 1) / size;  // rows per rank, the last ones padded
  TLKIT_CHECK(local.dim() >= 1 && local.size(0) <= rows, "rank ", comm.rank(), " holds ",
              local.size(0), " rows of ", n, " but a rank holds at most ", rows);
  auto sizes = local.sizes().vec();
  sizes[0] = rows;
  auto padded = at::zeros(sizes, local.options());
  padded.slice(0, 0, local.size(0)).copy_(local);
  std::vector<at::Tensor> parts;
  comm.allgather(padded.contiguous(), parts);
  // Row i of the whole came from rank i % size, as its (i / size)-th row.
  auto stacked = at::stack(parts, 1);  // [rows, size, ...]
  sizes[0] = rows * size;
  return stacked.reshape(sizes).slice(0, 0, n).contiguous();
}

GradientAverager::GradientAverager(Communicator& comm, std::int64_t bucket_bytes)
    : comm_(comm), bucket_bytes_(bucket_bytes) {}

GradientAverager::~GradientAverager() {
  try {
    detach();
  } catch (...) {  // a collective that failed: its error was (or will be) reported elsewhere
  }
}

void GradientAverager::attach(const std::vector<at::Tensor>& parameters) {
  detach();
  // Buckets in reverse parameter order, one open bucket per (dtype, device).
  std::map<std::string, size_t> open;
  std::vector<std::int64_t> bytes;
  for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
    const auto& p = *it;
    if (!p.defined() || !p.requires_grad() || p.numel() == 0) continue;
    const auto kind = std::string(c10::toString(p.scalar_type())) + "/" + p.device().str();
    const auto size = p.numel() * static_cast<std::int64_t>(p.element_size());
    auto found = open.find(kind);
    // The first bucket (the last layers, whose gradients come first) is small, as in torch's
    // DDP: its allreduce starts early and runs beside the rest of backward.
    const auto cap = found == open.end() || found->second == 0
                         ? std::min<std::int64_t>(bucket_bytes_, 1 << 20)
                         : bucket_bytes_;
    if (found == open.end() || bytes[found->second] >= cap) {
      open[kind] = buckets_.size();
      buckets_.emplace_back();
      bytes.push_back(0);
      found = open.find(kind);
    }
    Slot slot;
    slot.parameter = p;
    slot.bucket = found->second;
    slot.offset = bytes[found->second] / static_cast<std::int64_t>(p.element_size());
    bytes[found->second] += size;
    buckets_[slot.bucket].slots.push_back(slots_.size());
    slots_.push_back(slot);
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const auto& first = slots_[buckets_[b].slots.front()].parameter;
    buckets_[b].flat = at::zeros({bytes[b] / static_cast<std::int64_t>(first.element_size())},
                                 first.options().requires_grad(false));
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].hook = slots_[i].parameter.register_hook(
        [this, i](const at::Tensor& grad) { on_gradient(i, grad); });
  }
}

void GradientAverager::detach() {
  for (auto& slot : slots_) slot.parameter.remove_hook(slot.hook);
  std::vector<Bucket> buckets = std::move(buckets_);
  slots_.clear();
  buckets_.clear();
  next_launch_ = 0;
  // Started collectives are finished: every rank started them, so every rank waits for them.
  for (auto& bucket : buckets)
    if (bucket.pending) bucket.pending->wait();
}

void GradientAverager::on_gradient(size_t index, const at::Tensor& grad) {
  auto& slot = slots_[index];
  auto& bucket = buckets_[slot.bucket];
  auto part = bucket.flat.slice(0, slot.offset, slot.offset + slot.parameter.numel());
  if (slot.ready) {
    // A second gradient for the same parameter in one backward (the hook fired again).
    TLKIT_CHECK(!bucket.pending,
                "a gradient arrived after its bucket's allreduce started (two "
                "backward passes before one average()?)");
    part.add_(grad.detach().reshape({-1}));
    return;
  }
  part.copy_(grad.detach().reshape({-1}));
  slot.ready = true;
  ++bucket.ready;
  launch_ready_buckets();
}

void GradientAverager::launch(Bucket& bucket) {
  const auto start = std::chrono::steady_clock::now();
  bucket.pending = comm_.allreduce_sum_async(bucket.flat);
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void GradientAverager::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == buckets_[next_launch_].slots.size())
    launch(buckets_[next_launch_++]);
}

void GradientAverager::average(const std::vector<at::Tensor>& parameters) {
  if (attached()) {
    at::NoGradGuard no_grad;
    // Parameters that got no gradient in this backward contribute zeros.
    for (; next_launch_ < buckets_.size(); ++next_launch_) {
      auto& bucket = buckets_[next_launch_];
      for (const auto i : bucket.slots) {
        auto& slot = slots_[i];
        if (slot.ready) continue;
        bucket.flat.slice(0, slot.offset, slot.offset + slot.parameter.numel()).zero_();
        slot.ready = true;
        ++bucket.ready;
      }
      launch(bucket);
    }
    const auto start = std::chrono::steady_clock::now();
    for (auto& bucket : buckets_) {
      auto pending = std::move(bucket.pending);
      pending->wait();
    }
    comm_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (auto& bucket : buckets_) {
      bucket.flat.div_(comm_.world_size());
      for (const auto i : bucket.slots) {
        auto& slot = slots_[i];
        auto& p = slot.parameter;
        const auto averaged =
            bucket.flat.slice(0, slot.offset, slot.offset + p.numel()).view(p.sizes());
        if (p.grad().defined())
          p.mutable_grad().copy_(averaged);
        else
          p.mutable_grad() = averaged.clone();
        slot.ready = false;
      }
      bucket.ready = 0;
    }
    next_launch_ = 0;
    return;
  }
  std::vector<at::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  size_t buffer = 0;
  for (auto& [kind, group] : by_kind(grads)) {
    // Consecutive gradients up to bucket_bytes per bucket.
    size_t begin = 0;
    while (begin < group.size()) {
      size_t end = begin;
      std::int64_t numel = 0, bytes = 0;
      while (end < group.size() && (end == begin || bytes < bucket_bytes_)) {
        numel += group[end].numel();
        bytes += group[end].numel() * static_cast<std::int64_t>(group[end].element_size());
        ++end;
      }
      if (buffer == buffers_.size()) buffers_.emplace_back();
      auto& flat = buffers_[buffer++];
      if (!flat.defined() || flat.numel() != numel ||
          flat.scalar_type() != group[begin].scalar_type())
        flat = at::empty({numel}, group[begin].options());
      std::int64_t offset = 0;
      for (size_t i = begin; i < end; ++i) {
        const auto count = group[i].numel();
        flat.slice(0, offset, offset + count).copy_(group[i].reshape({-1}));
        offset += count;
      }
      std::vector<at::Tensor> one{flat};
      const auto start = std::chrono::steady_clock::now();
      comm_.allreduce_sum(one);
      comm_seconds_ +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      flat.div_(comm_.world_size());
      offset = 0;
      for (size_t i = begin; i < end; ++i) {
        const auto count = group[i].numel();
        group[i].copy_(flat.slice(0, offset, offset + count).view(group[i].sizes()));
        offset += count;
      }
      begin = end;
    }
  }
}

}  // namespace tlkit::train
