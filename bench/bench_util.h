#pragma once
// Shared pieces of tlkit's benchmarks (header-only: only bench/*_bench.cpp files become targets).
//
//  - Samples: repeated timings and their median / spread;
//  - time_ms: wall-clock milliseconds of one call;
//  - MemoryBandwidth: the STREAM triad a[i] = b[i] + s*c[i] (and an in-place update) over float
//    arrays far larger than the caches, on all intra-op threads; the bandwidth a streaming kernel
//    can reach on this machine, and so the floor for memory-bound kernels;
//  - minor_page_faults: to see what fresh temporaries cost;
//  - MachineInfo: what the result tables record about where they were measured.

#include <time.h>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <sys/resource.h>

#include <tlkit/core/error.h>
#include <tlkit/version.h>

namespace tlkit::bench {

// A series of timings in milliseconds.
class Samples {
 public:
  void add(double ms) { values_.push_back(ms); }
  bool empty() const { return values_.empty(); }
  std::size_t size() const { return values_.size(); }
  const std::vector<double>& values() const { return values_; }

  double median() const {
    TLKIT_CHECK(!values_.empty(), "median of no samples; run at least once (--runs >= 1)");
    std::vector<double> sorted = values_;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t mid = sorted.size() / 2;
    return sorted.size() % 2 == 1 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
  }
  double min() const { return *std::min_element(values_.begin(), values_.end()); }
  double max() const { return *std::max_element(values_.begin(), values_.end()); }
  // (max - min) / median: how much the runs disagreed (0.05 = 5 %).
  double spread() const { return (max() - min()) / median(); }

 private:
  std::vector<double> values_;
};

// Wall-clock milliseconds taken by fn().
template <typename Fn>
double time_ms(Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  std::forward<Fn>(fn)();
  const auto stop = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::milli>(stop - start).count();
}

// CPU time used so far by all threads of this process, in milliseconds. Unlike wall time it
// does not grow while other processes hold the cores, so ratios of CPU times stay meaningful on a
// busy machine (time spent waiting for memory still counts; OpenMP's brief spin-waits add a
// little).
inline double process_cpu_ms() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return 1e3 * static_cast<double>(now.tv_sec) + 1e-6 * static_cast<double>(now.tv_nsec);
}

// Wall-clock and process CPU milliseconds of one measured call.
struct Timing {
  double wall_ms = 0;
  double cpu_ms = 0;
};

template <typename Fn>
Timing time_wall_and_cpu(Fn&& fn) {
  const double cpu_start = process_cpu_ms();
  const double wall = time_ms(std::forward<Fn>(fn));
  return {wall, process_cpu_ms() - cpu_start};
}

// Minor page faults of this process so far (first touches of fresh memory, among others).
inline int64_t minor_page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_minflt);
}

// Two streaming kernels over float arrays far larger than the caches, run on all intra-op threads
// with at::parallel_for:
//  - the STREAM triad a[i] = b[i] + s*c[i], counted as 12 bytes per element (read b and c, write
//    a) as STREAM counts it. A write-allocate cache also reads a's lines before writing them, so
//    16 bytes really move and an in-place kernel can beat the bandwidth this reports;
//  - an in-place update a[i] = s*a[i] + b[i], 12 bytes per element that really move (read a and b,
//    write a): the access pattern of an optimizer step, which only writes what it has just read.
// The constructor also measures what first-touching fresh memory costs (page faults), which is
// what every temporary tensor of a tensor-op optimizer pays when the allocator returns new pages.
class MemoryBandwidth {
 public:
  static constexpr int64_t kBytesPerElement = 12;

  // elements per array; the default (2^26, 256 MiB per array) is far beyond any CPU cache.
  explicit MemoryBandwidth(int64_t elements = int64_t{1} << 26) : elements_(elements) {
    TLKIT_CHECK(elements > 0, "bandwidth array size must be positive, got ", elements);
    a_ = at::empty({elements}, at::kFloat);
    b_ = at::empty({elements}, at::kFloat);
    c_ = at::empty({elements}, at::kFloat);
    // First touch on the threads that will stream the arrays later.
    const int64_t faults_before = minor_page_faults();
    first_touch_ms_ = time_ms([&] {
      a_.fill_(0.0f);
      b_.fill_(1.0f);
      c_.fill_(2.0f);
    });
    first_touch_faults_ = minor_page_faults() - faults_before;
  }

  int64_t elements() const { return elements_; }
  double bytes() const { return static_cast<double>(kBytesPerElement * elements_); }
  // Milliseconds per GiB to fill fresh memory, page faults included.
  double first_touch_ms_per_gib() const {
    return first_touch_ms_ / (3.0 * 4.0 * static_cast<double>(elements_) / (1 << 30));
  }
  // Microseconds of that fill per page fault (0 when the fill took none).
  double first_touch_us_per_fault() const {
    return first_touch_faults_ > 0 ? 1e3 * first_touch_ms_ / first_touch_faults_ : 0.0;
  }

  // `passes` triad passes back to back; returns the time per pass.
  Timing triad(int passes = 1, float scalar = 3.0f) {
    float* __restrict a = a_.data_ptr<float>();
    const float* __restrict b = b_.data_ptr<float>();
    const float* __restrict c = c_.data_ptr<float>();
    return repeat(passes, [=](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) a[i] = b[i] + scalar * c[i];
    });
  }

  // `passes` in-place passes over c (b is read; c converges to 2b, no overflow or denormals);
  // returns the time per pass.
  Timing in_place(int passes = 1, float scalar = 0.5f) {
    const float* __restrict b = b_.data_ptr<float>();
    float* __restrict c = c_.data_ptr<float>();
    return repeat(passes, [=](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) c[i] = scalar * c[i] + b[i];
    });
  }

  // Bandwidth in GB/s (1e9 bytes per second) of a pass that took `ms`.
  double gbps(double ms) const { return bytes() / (ms * 1e-3) / 1e9; }

 private:
  static constexpr int64_t kGrain = int64_t{1} << 16;

  template <typename Kernel>
  Timing repeat(int passes, const Kernel& kernel) {
    TLKIT_CHECK(passes >= 1, "bandwidth passes must be at least 1, got ", passes);
    const Timing total = time_wall_and_cpu([&] {
      for (int pass = 0; pass < passes; ++pass) at::parallel_for(0, elements_, kGrain, kernel);
    });
    return {total.wall_ms / passes, total.cpu_ms / passes};
  }

  int64_t elements_;
  at::Tensor a_, b_, c_;
  double first_touch_ms_ = 0;
  int64_t first_touch_faults_ = 0;
};

// Where a benchmark ran.
struct MachineInfo {
  std::string cpu_model;
  unsigned hardware_threads = 0;
  int intra_op_threads = 0;
  std::string libtorch_version;
  std::string tlkit_version;
  std::string date_utc;  // ISO 8601
};

inline std::string read_cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) break;
    const auto first = line.find_first_not_of(" \t", colon + 1);
    return first == std::string::npos ? std::string("unknown") : line.substr(first);
  }
  return "unknown";
}

inline std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

inline MachineInfo machine_info() {
  MachineInfo info;
  info.cpu_model = read_cpu_model();
  info.hardware_threads = std::max(1u, std::thread::hardware_concurrency());
  info.intra_op_threads = at::get_num_threads();
  info.libtorch_version = TORCH_VERSION;
  info.tlkit_version = TLKIT_VERSION_STRING;
  info.date_utc = utc_now_iso8601();
  return info;
}

// Fixed-point text of x with `digits` decimals.
inline std::string fixed(double x, int digits) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << x;
  return out.str();
}

// "a,b,,c" -> {"a", "b", "c"}
inline std::vector<std::string> split_list(const std::string& text, char separator = ',') {
  std::vector<std::string> items;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, separator)) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

// A string as a JSON string literal.
inline std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", ch);
          out += escaped;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

}  // namespace tlkit::bench
