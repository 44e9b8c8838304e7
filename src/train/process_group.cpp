// The c10d side of data parallelism (built with TLKIT_WITH_DISTRIBUTED=ON): the Communicator over
// a Gloo (or NCCL) process group, and connect(). process_group_none.cpp stands in without c10d.
#include <tlkit/train/distributed.h>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>

#include "c10d_compat.h"

namespace tlkit::train {
namespace {

// An exception's message without LibTorch's backtrace: its first line.
std::string first_line(const std::exception& e) {
  std::string message = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e))
    message = c10->what_without_backtrace();
  const auto newline = message.find('\n');
  if (newline != std::string::npos) message.resize(newline);
  return message;
}

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

class GroupCommunicator final : public Communicator {
 public:
  GroupCommunicator(c10::intrusive_ptr<compat::Store> store,
                    c10::intrusive_ptr<compat::Group> group, int rank, int size,
                    std::string backend, std::chrono::milliseconds timeout)
      : store_(std::move(store)),
        group_(std::move(group)),
        rank_(rank),
        size_(size),
        backend_(std::move(backend)),
        timeout_(timeout) {}

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string backend() const override { return backend_; }

  void allreduce_sum(std::vector<at::Tensor>& tensors) override {
    if (tensors.empty()) return;
    for (auto& t : tensors) {
      ::c10d::AllreduceOptions options;
      options.timeout = timeout_;
      std::vector<at::Tensor> one{t};
      wait("allreduce", group_->allreduce(one, options));
    }
  }

  std::unique_ptr<PendingCollective> allreduce_sum_async(const at::Tensor& tensor) override {
    ::c10d::AllreduceOptions options;
    options.timeout = timeout_;
    std::vector<at::Tensor> one{tensor};
    return std::make_unique<Pending>(*this, group_->allreduce(one, options));
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    for (auto& t : tensors) {
      ::c10d::BroadcastOptions options;
      options.rootRank = root;
      options.timeout = timeout_;
      std::vector<at::Tensor> one{t};
      wait("broadcast", group_->broadcast(one, options));
    }
  }

  void allgather(const at::Tensor& input, std::vector<at::Tensor>& outputs) override {
    outputs.clear();
    for (int r = 0; r < size_; ++r) outputs.push_back(at::empty_like(input));
    std::vector<std::vector<at::Tensor>> out{outputs};
    std::vector<at::Tensor> in{input};
    ::c10d::AllgatherOptions options;
    options.timeout = timeout_;
    wait("allgather", group_->allgather(out, in, options));
    outputs = out.front();
  }

  void barrier() override {
    // A tiny allreduce rather than ProcessGroup::barrier: the same timeout and error path as
    // every other collective.
    std::vector<at::Tensor> one{at::zeros({1})};
    allreduce_sum(one);
  }

 private:
  class Pending final : public PendingCollective {
   public:
    Pending(GroupCommunicator& owner, c10::intrusive_ptr<::c10d::Work> work)
        : owner_(owner), work_(std::move(work)) {}
    void wait() override { owner_.wait("allreduce", work_); }

   private:
    GroupCommunicator& owner_;
    c10::intrusive_ptr<::c10d::Work> work_;
  };

  void wait(const char* what, const c10::intrusive_ptr<::c10d::Work>& work) {
    try {
      work->wait(timeout_);
    } catch (const std::exception& e) {
      const auto message = first_line(e);
      fail("rank ", rank_, " of ", size_, ": the ", what,
           " with the other ranks failed (a rank died, hung or could not be reached within ",
           timeout_.count() / 1000, " s): ", message);
    }
  }

  c10::intrusive_ptr<compat::Store> store_;
  c10::intrusive_ptr<compat::Group> group_;
  int rank_, size_;
  std::string backend_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

bool data_parallel_available() { return true; }

std::shared_ptr<Communicator> connect(const DistributedEnv& e, std::chrono::milliseconds timeout,
                                      const std::string& backend) {
  TLKIT_CHECK(e.world_size >= 1 && e.rank >= 0 && e.rank < e.world_size, "rank ", e.rank,
              " is outside a world of ", e.world_size);
  TLKIT_CHECK(backend == "gloo" || backend == "nccl", "unknown distributed backend '", backend,
              "' (gloo or nccl)");
  c10::intrusive_ptr<compat::Store> store;
  try {
    compat::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(e.master_port);
    options.isServer = e.rank == 0 && !e.agent_store;
    options.numWorkers = static_cast<std::size_t>(e.world_size);
    options.waitWorkers = false;
    options.timeout = timeout;
    compat::use_plain_socket_store(options);
    store = c10::make_intrusive<compat::TCPStore>(e.master_addr, options);
  } catch (const std::exception& error) {
    fail("rank ", e.rank, " could not ", e.rank == 0 && !e.agent_store ? "host" : "reach",
         " the rendezvous store at ", e.master_addr, ":", e.master_port, ": ", first_line(error));
  }
  if (!e.store_prefix.empty())
    store = c10::make_intrusive<compat::PrefixStore>(e.store_prefix, store);
  auto prefixed = c10::make_intrusive<compat::PrefixStore>("tlkit/", store);

  c10::intrusive_ptr<compat::Group> group;
  try {
    if (backend == "gloo") {
      auto options = compat::Gloo::Options::create(timeout);
      if (!e.socket_interface.empty())
        options->devices.push_back(compat::Gloo::createDeviceForInterface(e.socket_interface));
      else if (is_loopback(e.master_addr))
        options->devices.push_back(compat::Gloo::createDeviceForHostname("127.0.0.1"));
      else
        options->devices.push_back(compat::Gloo::createDefaultDevice());
      options->threads = 2;
      group = c10::make_intrusive<compat::Gloo>(prefixed, e.rank, e.world_size, options);
    } else {
#if defined(TLKIT_WITH_NCCL)
      auto options = compat::Nccl::Options::create();
      options->timeout = timeout;
      group = c10::make_intrusive<compat::Nccl>(prefixed, e.rank, e.world_size, options);
#else
      fail("this tlkit was built without NCCL (LibTorch without CUDA): use --dist-backend gloo");
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& error) {
    fail("rank ", e.rank, " of ", e.world_size, " could not join the process group through ",
         e.master_addr, ":", e.master_port, " within ", timeout.count() / 1000,
         " s: ", first_line(error));
  }
  return std::make_shared<GroupCommunicator>(store, group, e.rank, e.world_size, backend, timeout);
}

}  // namespace tlkit::train
