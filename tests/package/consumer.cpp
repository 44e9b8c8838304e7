// Links against an installed tlkit, takes one optimizer step and hashes a string (OpenSSL, a
// private dependency of the static library, must come through the package).
#include <iostream>

#include <tlkit/model/file_hash.h>
#include <tlkit/optim.h>
#include <tlkit/version.h>

int main() {
  auto w = torch::ones({3}, torch::kFloat64).requires_grad_(true);
  tlkit::optim::SGD sgd({w}, tlkit::optim::SGDOptions(0.5));
  (w * w).sum().backward();
  sgd.step();  // w = 1 - 0.5 * 2 = 0
  const bool stepped = w.abs().max().item<double>() < 1e-12;
  const bool hashed = tlkit::model::sha256_hex("abc") ==
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const bool ok = stepped && hashed;
  std::cout << "tlkit " << TLKIT_VERSION_STRING << (ok ? " ok" : " WRONG") << "\n";
  return ok ? 0 : 1;
}
