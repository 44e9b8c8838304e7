// Optimizer and schedule specs as a user types them ("adam:lr=1e-3,betas=0.9/0.999",
// "restarts:T_0=5,T_mult=2"): the input's first byte picks the parser, the rest is the text.
#include <tlkit/optim/settings.h>
#include <tlkit/schedule/spec.h>

#include <torch/optim/sgd.h>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    tlkit::fuzz::expect_only_tlkit_errors([&] { tlkit::optim::parse_optimizer_settings(text); });
  } else {
    static auto parameter = torch::zeros({1}).requires_grad_();
    torch::optim::SGD optimizer({parameter}, torch::optim::SGDOptions(0.1));
    tlkit::fuzz::expect_only_tlkit_errors([&] {
      auto scheduler = tlkit::schedule::make_scheduler(text, optimizer, {100, 10});
      for (int i = 0; i < 5; ++i) scheduler->step();
    });
  }
  return 0;
}
