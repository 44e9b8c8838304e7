// IDX files (MNIST / Fashion-MNIST images or labels), plain or gzip.
#include <tlkit/data/idx.h>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = tlkit::fuzz::scratch() / "input-idx3-ubyte";
  tlkit::fuzz::write(file, data, size);
  tlkit::fuzz::expect_only_tlkit_errors([&] { tlkit::data::read_idx(file); });
  return 0;
}
