// A feature folder's manifest.json (and the JSON parser under it), beside valid .npy files.
#include <tlkit/core/json.h>
#include <tlkit/core/npy.h>
#include <tlkit/pipeline/extract.h>

#include <ATen/ATen.h>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto dir = tlkit::fuzz::scratch() / "features";
  static const bool arrays = [&] {
    std::filesystem::create_directories(dir);
    tlkit::write_npy(dir / "features.npy", at::zeros({3, 2}, at::kFloat));
    tlkit::write_npy(dir / "labels.npy", at::zeros({3}, at::kLong));
    return true;
  }();
  (void)arrays;
  tlkit::fuzz::write(dir / "manifest.json", data, size);
  tlkit::fuzz::expect_only_tlkit_errors(
      [&] { tlkit::Json::parse(std::string(reinterpret_cast<const char*>(data), size)); });
  tlkit::fuzz::expect_only_tlkit_errors([&] { tlkit::pipeline::load_features(dir); });
  return 0;
}
