#include <tlkit/core/threads.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <dlfcn.h>

#include <ATen/Parallel.h>

namespace tlkit {
namespace {
// The threaded BLAS libraries keep their own pool, sized to the machine, whatever LibTorch's count:
// with --threads 1 an OpenBLAS worker still spins (sched_yield) on a second core, which halves the
// throughput of two runs side by side. Their thread setters are looked up at run time, so any BLAS
// (or none) can be loaded.
void set_blas_threads(int n) {
  using Setter = void (*)(int);
  for (const char* name : {"openblas_set_num_threads", "bli_thread_set_num_threads"}) {
    if (auto setter = reinterpret_cast<Setter>(::dlsym(RTLD_DEFAULT, name))) setter(n);
  }
}
}  // namespace

int set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  set_blas_threads(n);
  return at::get_num_threads();
}

ScopedThreads::ScopedThreads(int n)
    : before_(at::get_num_threads()), changed_(n > 0 && n != before_) {
  if (changed_) set_threads(n);
}

ScopedThreads::~ScopedThreads() {
  if (changed_) set_threads(before_);
}

std::string blas_library() {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const auto path = line.substr(slash);
    const auto name = std::filesystem::path(path).filename().string();
    const bool blas = name.rfind("libblas.so", 0) == 0 || name.rfind("libopenblas", 0) == 0 ||
                      name.rfind("libblis", 0) == 0 || name.rfind("libmkl_rt", 0) == 0;
    if (!blas) continue;
    std::error_code error;
    const auto resolved = std::filesystem::canonical(path, error);
    return error ? path : resolved.string();
  }
  return "";
}

bool is_reference_blas(const std::string& library) {
  // Debian installs the netlib reference as <libdir>/blas/libblas.so.3; the optimised ones live in
  // openblas-pthread/, openblas-openmp/, blis-openmp/, ...
  const std::filesystem::path path(library);
  return path.filename().string().rfind("libblas.so", 0) == 0 &&
         path.parent_path().filename() == "blas";
}

}  // namespace tlkit
