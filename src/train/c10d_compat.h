#pragma once
// Every difference between LibTorch versions in the c10d API tlkit uses, in one place.
//
// LibTorch 1.13: ProcessGroupGloo derives from ProcessGroup and is used directly.
// LibTorch 2.x: Gloo and NCCL derive from c10d::Backend (ProcessGroup wraps backends); calling
// the backend directly works the same way (collectives return a Work to wait on), so only the
// base class tlkit holds them by differs.

#include <torch/version.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#if defined(TLKIT_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace tlkit::train::compat {

using Store = ::c10d::Store;
using TCPStore = ::c10d::TCPStore;
using TCPStoreOptions = ::c10d::TCPStoreOptions;
using PrefixStore = ::c10d::PrefixStore;
using Gloo = ::c10d::ProcessGroupGloo;
#if TORCH_VERSION_MAJOR >= 2
using Group = ::c10d::Backend;  // what Gloo and NCCL derive from
#else
using Group = ::c10d::ProcessGroup;
#endif
#if defined(TLKIT_WITH_NCCL)
using Nccl = ::c10d::ProcessGroupNCCL;
#endif

// LibTorch 2.2+ can serve the TCP store with libuv (its default from 2.4), but libuv is optional
// in LibTorch builds (Debian's has none, and refuses the default): tlkit asks for the plain
// socket server, which every build has.
inline void use_plain_socket_store(TCPStoreOptions& options) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  options.useLibUV = false;
#else
  (void)options;
#endif
}

}  // namespace tlkit::train::compat
