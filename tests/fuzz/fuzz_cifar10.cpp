// A CIFAR-10 binary batch (test_batch.bin) and its batches.meta.txt, from one input: the first
// byte's value says how many bytes of the rest are the class-name file.
#include <tlkit/data/cifar10.h>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto dir = tlkit::fuzz::scratch() / "cifar";
  std::filesystem::create_directories(dir);
  const std::size_t meta = size > 0 ? std::min<std::size_t>(data[0], size - 1) : 0;
  tlkit::fuzz::write(dir / "batches.meta.txt", data + (size > 0 ? 1 : 0), meta);
  const std::size_t start = size > 0 ? 1 + meta : 0;
  tlkit::fuzz::write(dir / "test_batch.bin", data + start, size - start);
  tlkit::fuzz::expect_only_tlkit_errors([&] {
    tlkit::data::Cifar10 test(dir, tlkit::data::Cifar10::Part::kTest);
    for (std::size_t i = 0; i < test.size() && i < 4; ++i) test.get(i);
  });
  return 0;
}
