#pragma once
// The versioned layout tlkit optimizers use in torch::serialize archives.
//
// save() writes the format version and the optimizer's name next to LibTorch's usual
// "state" / "param_groups" entries; load() checks both first, so an archive from another optimizer,
// from LibTorch's own torch::optim classes or from a future format is a clear tlkit::Error rather
// than silently wrong state (the habit of dlib's solvers).

#include <cstdint>

namespace tlkit::optim {

inline constexpr std::int64_t kStateFormatVersion = 1;
inline constexpr const char* kStateFormatVersionKey = "tlkit_optim/format_version";
inline constexpr const char* kStateOptimizerKey = "tlkit_optim/optimizer";

}  // namespace tlkit::optim
