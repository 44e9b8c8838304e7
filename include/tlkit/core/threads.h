#pragma once
// Thread settings. LibTorch starts with one intra-op thread on small machines; tlkit sets the
// count deliberately (all hardware threads unless the user asks for fewer).

namespace tlkit {

// Sets LibTorch's intra-op thread count; n <= 0 means every hardware thread. Returns the count set.
int set_threads(int n);

}  // namespace tlkit
