// .npy files (cached features and labels): the header and the data behind it.
#include <tlkit/core/npy.h>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto file = tlkit::fuzz::scratch() / "input.npy";
  tlkit::fuzz::write(file, data, size);
  tlkit::fuzz::expect_only_tlkit_errors([&] {
    tlkit::NpyReader reader(file);
    // Bounded: a valid header may declare billions of zero-byte rows (shape (N, 0)).
    for (int i = 0; i < 1000 && reader.rows_left() > 0; ++i) reader.read_rows(7);
  });
  return 0;
}
