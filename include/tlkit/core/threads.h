#pragma once
// Compute settings. LibTorch starts with one intra-op thread on small machines; tlkit sets the
// count deliberately (all hardware threads unless the user asks for fewer). LibTorch builds that
// call the system BLAS (Debian's) run their fully connected layers on whatever libblas.so.3 the
// system provides: the netlib reference BLAS is about 30x slower than OpenBLAS there.

#include <string>

namespace tlkit {

// Sets LibTorch's intra-op thread count, and the BLAS library's own pool (OpenBLAS, BLIS) to the
// same; n <= 0 means every hardware thread. Returns the count set.
int set_threads(int n);

// set_threads(n) for a scope, the count before it restored at its end; n <= 0 or the current
// count changes nothing. For short operations that threads slow down (they wait for each other on
// every one, many times their cost on a busy machine).
class ScopedThreads {
 public:
  explicit ScopedThreads(int n);
  ~ScopedThreads();
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int before_;
  bool changed_;
};

// The BLAS library loaded into this process (its resolved path), or "" when none is (LibTorch
// built with MKL links it statically).
std::string blas_library();

// True when blas_library() is the unoptimised netlib reference BLAS (Debian's libblas3).
bool is_reference_blas(const std::string& library);

}  // namespace tlkit
