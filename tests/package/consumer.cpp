// Links against an installed tlkit and takes one optimizer step.
#include <iostream>

#include <tlkit/optim.h>
#include <tlkit/version.h>

int main() {
  auto w = torch::ones({3}, torch::kFloat64).requires_grad_(true);
  tlkit::optim::SGD sgd({w}, tlkit::optim::SGDOptions(0.5));
  (w * w).sum().backward();
  sgd.step();  // w = 1 - 0.5 * 2 = 0
  const bool ok = w.abs().max().item<double>() < 1e-12;
  std::cout << "tlkit " << TLKIT_VERSION_STRING << (ok ? " ok" : " WRONG") << "\n";
  return ok ? 0 : 1;
}
