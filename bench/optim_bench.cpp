// optim_bench: how long one optimizer step takes over VGG16's 138,357,544 float32 parameters,
// for tlkit::optim, for LibTorch's own torch::optim equivalent, and for the memory-bandwidth floor
// (bytes a single-pass kernel must move, at the bandwidth of a STREAM triad measured in the same
// run). Writes the table as Markdown, CSV and JSON. See bench/README.md.
//
//   optim_bench [--runs 7] [--warmup 2] [--threads N] [--only adam,adamw] [--out bench/results]
//               [--check] [--tensor-ops] [--reuse-memory] [--device cpu|cuda]
//
// --device cuda: the parameters, gradients and state live on the GPU, every timed step is
// bracketed by torch::cuda::synchronize(), and the floor is the step's bytes at the bandwidth of a
// device-to-device copy of a tensor as large as the parameter set (optim_step_cuda.{md,csv,json}).

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <torch/cuda.h>
#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/threads.h>
#include <tlkit/optim.h>

#include "bench_util.h"
#include "optim_bench_report.h"

namespace tlkit::bench {
namespace {

constexpr int64_t kVgg16Parameters = 138357544;
constexpr double kLr = 1e-3;  // the same for every optimizer; the time does not depend on it

struct Args {
  int runs = 7;
  int warmup = 0;   // 0: 2, or 5 with --reuse-memory (the heap needs a few steps to settle)
  int threads = 0;  // 0: every hardware thread
  std::vector<std::string> only;
  std::string out = "bench/results";
  bool check = false;
  bool tensor_ops = false;     // force tlkit's tensor-op path instead of its fused kernels
  bool reuse_memory = false;   // keep freed memory in the heap instead of returning it to the OS
  std::string device = "cpu";  // cpu | cuda
};

using OptimizerFactory =
    std::function<std::unique_ptr<torch::optim::Optimizer>(const std::vector<torch::Tensor>&)>;

struct OptimizerCase {
  std::string name;
  std::string label;
  int bytes_per_param;
  std::string traffic;
  std::string reference_name;
  bool speedup_target;
  OptimizerFactory ours;
  OptimizerFactory reference;
};

template <typename Optimizer, typename Options>
OptimizerFactory factory(Options options) {
  return [options](const std::vector<torch::Tensor>& params) {
    return std::unique_ptr<torch::optim::Optimizer>(std::make_unique<Optimizer>(params, options));
  };
}

std::vector<OptimizerCase> optimizer_cases() {
  namespace ours = tlkit::optim;
  namespace ref = torch::optim;
  const auto sgd = ours::SGDOptions(kLr);
  const auto sgd_ref = ref::SGDOptions(kLr);
  const auto rms = ours::RMSPropOptions(kLr);
  const auto rms_ref = ref::RMSpropOptions(kLr);
  const auto adam = ours::AdamOptions(kLr);
  const auto adam_ref = ref::AdamOptions(kLr);
  return {
      {"sgd", "SGD", 12, "read p, g; write p", "SGD", false, factory<ours::SGD>(sgd),
       factory<ref::SGD>(sgd_ref)},
      {"momentum", "SGD, momentum 0.9", 20, "read p, g, momentum buffer; write p, buffer",
       "SGD momentum", false, factory<ours::SGD>(ours::SGDOptions(sgd).momentum(0.9)),
       factory<ref::SGD>(ref::SGDOptions(sgd_ref).momentum(0.9))},
      {"nesterov", "SGD, Nesterov momentum 0.9", 20, "read p, g, momentum buffer; write p, buffer",
       "SGD nesterov", false,
       factory<ours::SGD>(ours::SGDOptions(sgd).momentum(0.9).nesterov(true)),
       factory<ref::SGD>(ref::SGDOptions(sgd_ref).momentum(0.9).nesterov(true))},
      {"adagrad", "AdaGrad", 20, "read p, g, sum of squares; write p, sum", "Adagrad", false,
       factory<ours::AdaGrad>(ours::AdaGradOptions(kLr)),
       factory<ref::Adagrad>(ref::AdagradOptions(kLr))},
      {"rmsprop", "RMSProp, alpha 0.99", 20, "read p, g, square_avg; write p, square_avg",
       "RMSprop", false, factory<ours::RMSProp>(rms), factory<ref::RMSprop>(rms_ref)},
      {"rmsprop-centered", "RMSProp, momentum 0.9, centered", 36,
       "read p, g, square_avg, grad_avg, momentum buffer; write p and the three states",
       "RMSprop momentum centered", false,
       factory<ours::RMSProp>(ours::RMSPropOptions(rms).momentum(0.9).centered(true)),
       factory<ref::RMSprop>(ref::RMSpropOptions(rms_ref).momentum(0.9).centered(true))},
      {"adam", "Adam, betas (0.9, 0.999)", 28, "read p, g, exp_avg, exp_avg_sq; write p, both",
       "Adam", true, factory<ours::Adam>(adam), factory<ref::Adam>(adam_ref)},
      {"adam-amsgrad", "Adam, amsgrad", 36,
       "read p, g, exp_avg, exp_avg_sq, max_exp_avg_sq; write p and the three states",
       "Adam amsgrad", false, factory<ours::Adam>(ours::AdamOptions(adam).amsgrad(true)),
       factory<ref::Adam>(ref::AdamOptions(adam_ref).amsgrad(true))},
      {"adamw", "AdamW, weight decay 0.01", 28,
       "read p, g, exp_avg, exp_avg_sq; write p, both (decay folded into the same pass)", "AdamW",
       true, factory<ours::AdamW>(ours::AdamWOptions(kLr)),
       factory<ref::AdamW>(ref::AdamWOptions(kLr))},
  };
}

std::vector<OptimizerCase> select_cases(const std::vector<std::string>& only) {
  auto cases = optimizer_cases();
  if (only.empty()) return cases;
  std::string valid;
  for (const auto& c : cases) valid += (valid.empty() ? "" : ", ") + c.name;
  std::vector<OptimizerCase> chosen;
  for (const auto& name : only) {
    bool found = false;
    for (const auto& c : cases) {
      if (c.name != name) continue;
      chosen.push_back(c);
      found = true;
    }
    TLKIT_CHECK(found, "unknown optimizer '", name, "' in --only; valid names: ", valid);
  }
  return chosen;
}

// VGG16's parameters: 13 3x3 convolutions (weight + bias) and 3 linear layers (weight + bias),
// float32, each with a random gradient attached.
std::vector<torch::Tensor> vgg16_parameters(const torch::Device& device = torch::kCPU) {
  std::vector<std::vector<int64_t>> shapes;
  int64_t in = 3;
  for (const int64_t out : {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512}) {
    shapes.push_back({out, in, 3, 3});
    shapes.push_back({out});
    in = out;
  }
  for (const auto& [fan_in, fan_out] :
       std::vector<std::pair<int64_t, int64_t>>{{512 * 7 * 7, 4096}, {4096, 4096}, {4096, 1000}}) {
    shapes.push_back({fan_out, fan_in});
    shapes.push_back({fan_out});
  }
  torch::manual_seed(0);
  std::vector<torch::Tensor> params;
  int64_t total = 0;
  const auto options = torch::TensorOptions().device(device);
  for (const auto& shape : shapes) {
    auto p = (torch::randn(shape, options) * 0.01).set_requires_grad(true);
    p.mutable_grad() = torch::randn(shape, options);
    total += p.numel();
    params.push_back(std::move(p));
  }
  TLKIT_CHECK(total == kVgg16Parameters, "VGG16 parameter set has ", total,
              " parameters, expected ", kVgg16Parameters, "; the layer table above is wrong");
  return params;
}

// Times one step (wall and CPU) and adds the page faults it caused to `faults`.
void timed_step(torch::optim::Optimizer& optimizer, Samples& wall, Samples& cpu, int64_t& faults) {
  const int64_t faults_before = minor_page_faults();
  const Timing timing = time_wall_and_cpu([&] { optimizer.step(); });
  faults += minor_page_faults() - faults_before;
  wall.add(timing.wall_ms);
  cpu.add(timing.cpu_ms);
}

std::string describe_path(std::uint64_t fused, std::uint64_t updates) {
  if (fused == updates) return "fused kernel";
  if (fused == 0) return "tensor ops";
  return "mixed (" + std::to_string(fused) + " of " + std::to_string(updates) + " updates fused)";
}

// Warm-up steps (so state exists), then `runs` rounds of bandwidth passes, tlkit step and
// torch::optim step, alternating which optimizer goes first so neither always follows the passes.
OptimizerResult measure(const OptimizerCase& c, const std::vector<torch::Tensor>& params,
                        MemoryBandwidth& bandwidth, const Args& args) {
  OptimizerResult result;
  result.name = c.name;
  result.label = c.label;
  result.bytes_per_param = c.bytes_per_param;
  result.traffic = c.traffic;
  result.reference_name = "torch::optim " + c.reference_name;
  result.speedup_target = c.speedup_target;
  result.params = kVgg16Parameters;
  result.stream_bytes = bandwidth.bytes();

  auto ours = c.ours(params);
  auto reference = c.reference(params);
  // LibTorch 2.x: the same optimizer on LibTorch's fused kernel, for the three it has one for.
  const bool with_torch_fused = tlkit::optim::torch_fused_kernels_available() && !args.tensor_ops &&
                                (c.name == "sgd" || c.name == "momentum" || c.name == "nesterov" ||
                                 c.name.rfind("adam", 0) == 0);
  auto torch_fused = with_torch_fused ? c.ours(params) : nullptr;
  const auto torch_fused_step = [&] {
    tlkit::optim::ScopedKernelMode scoped(tlkit::optim::KernelMode::kTorchFused);
    torch_fused->step();
  };
  const auto fused_before = tlkit::optim::fused_update_count();
  for (int i = 0; i < args.warmup; ++i) {
    ours->step();
    reference->step();
    if (torch_fused) torch_fused_step();
  }
  // Bandwidth windows as long as the step they are compared with: load from other processes
  // changes over time, and a short pass would see less of it than a long step.
  result.stream_passes =
      std::max(1, static_cast<int>(std::lround(result.bytes_per_step() / bandwidth.bytes())));
  int64_t ours_faults = 0, reference_faults = 0;
  for (int run = 0; run < args.runs; ++run) {
    const Timing triad = bandwidth.triad(result.stream_passes);
    result.triad.add(triad.wall_ms);
    result.triad_cpu.add(triad.cpu_ms);
    result.in_place.add(bandwidth.in_place(result.stream_passes).wall_ms);
    if (run % 2 == 0) timed_step(*ours, result.ours, result.ours_cpu, ours_faults);
    timed_step(*reference, result.reference, result.reference_cpu, reference_faults);
    if (run % 2 == 1) timed_step(*ours, result.ours, result.ours_cpu, ours_faults);
    if (torch_fused) result.torch_fused.add(time_wall_and_cpu(torch_fused_step).wall_ms);
  }
  const auto updates = static_cast<std::uint64_t>(args.warmup + args.runs) * params.size();
  result.ours_path = describe_path(tlkit::optim::fused_update_count() - fused_before, updates);
  result.ours_faults_per_step = static_cast<double>(ours_faults) / args.runs;
  result.reference_faults_per_step = static_cast<double>(reference_faults) / args.runs;
  return result;  // both optimizers and their state are freed here
}

// --device cuda ---------------------------------------------------------------------------------

// The floor on a GPU: a device-to-device copy (at::Tensor::copy_) of a float tensor as large as
// the parameter set, 8 bytes per element (read the source, write the destination), timed between
// two torch::cuda::synchronize() calls.
class DeviceCopyBandwidth {
 public:
  DeviceCopyBandwidth(int64_t elements, const torch::Device& device) : elements_(elements) {
    const auto options = torch::TensorOptions().device(device).dtype(torch::kFloat);
    src_ = torch::rand({elements}, options);
    dst_ = torch::empty({elements}, options);
    copy(1);  // untimed first pass: the allocation and the kernel are ready
  }
  int64_t elements() const { return elements_; }
  double bytes() const { return 8.0 * static_cast<double>(elements_); }
  double gbps(double ms) const { return bytes() / (ms * 1e-3) / 1e9; }
  // `passes` copies back to back; returns the time per pass.
  double copy(int passes) {
    torch::cuda::synchronize();
    const double ms = time_ms([&] {
      for (int pass = 0; pass < passes; ++pass) dst_.copy_(src_);
      torch::cuda::synchronize();
    });
    return ms / passes;
  }

 private:
  int64_t elements_;
  torch::Tensor src_, dst_;
};

// One step, from a synchronised device to a synchronised device.
double timed_step_cuda(torch::optim::Optimizer& optimizer) {
  torch::cuda::synchronize();
  return time_ms([&] {
    optimizer.step();
    torch::cuda::synchronize();
  });
}

// The path tlkit's updates took on the device (its fused CPU kernels do not apply there).
std::string describe_device_path(std::uint64_t foreach, std::uint64_t torch_fused,
                                 std::uint64_t updates) {
  if (foreach == updates) return "foreach (multi-tensor)";
  if (torch_fused == updates) return "LibTorch fused";
  if (foreach == 0 && torch_fused == 0) return "tensor ops";
  return "mixed (" + std::to_string(foreach) + " foreach, " + std::to_string(torch_fused) +
         " LibTorch fused of " + std::to_string(updates) + " updates)";
}

// As measure(), on the device: warm-up steps, then `runs` rounds of copy passes (as many as move
// about the step's bytes), tlkit step, torch::optim step (alternating which goes first) and, on
// LibTorch 2.x, LibTorch's fused kernel.
OptimizerResult measure_cuda(const OptimizerCase& c, const std::vector<torch::Tensor>& params,
                             DeviceCopyBandwidth& bandwidth, const Args& args) {
  OptimizerResult result;
  result.name = c.name;
  result.label = c.label;
  result.bytes_per_param = c.bytes_per_param;
  result.traffic = c.traffic;
  result.reference_name = "torch::optim " + c.reference_name;
  result.speedup_target = c.speedup_target;
  result.params = kVgg16Parameters;
  result.stream_bytes = bandwidth.bytes();

  auto ours = c.ours(params);
  auto reference = c.reference(params);
  const bool with_torch_fused = tlkit::optim::torch_fused_kernels_available() && !args.tensor_ops &&
                                (c.name == "sgd" || c.name == "momentum" || c.name == "nesterov" ||
                                 c.name.rfind("adam", 0) == 0);
  auto torch_fused = with_torch_fused ? c.ours(params) : nullptr;
  const auto torch_fused_step = [&] {
    tlkit::optim::ScopedKernelMode scoped(tlkit::optim::KernelMode::kTorchFused);
    torch_fused->step();
  };
  for (int i = 0; i < args.warmup; ++i) {
    ours->step();
    reference->step();
    if (torch_fused) torch_fused_step();
  }
  torch::cuda::synchronize();
  result.stream_passes =
      std::max(1, static_cast<int>(std::lround(result.bytes_per_step() / bandwidth.bytes())));
  // Count only tlkit's own steps: LibTorch's fused steps are timed outside these counters' window.
  std::uint64_t foreach = 0, torch_fused_updates = 0;
  const auto ours_step = [&] {
    const auto foreach_before = tlkit::optim::foreach_update_count();
    const auto fused_before = tlkit::optim::torch_fused_update_count();
    result.ours.add(timed_step_cuda(*ours));
    foreach
      += tlkit::optim::foreach_update_count() - foreach_before;
    torch_fused_updates += tlkit::optim::torch_fused_update_count() - fused_before;
  };
  for (int run = 0; run < args.runs; ++run) {
    result.triad.add(bandwidth.copy(result.stream_passes));
    if (run % 2 == 0) ours_step();
    result.reference.add(timed_step_cuda(*reference));
    if (run % 2 == 1) ours_step();
    if (torch_fused) {
      torch::cuda::synchronize();
      result.torch_fused.add(time_ms([&] {
        torch_fused_step();
        torch::cuda::synchronize();
      }));
    }
  }
  const auto updates = static_cast<std::uint64_t>(args.runs) * params.size();
  result.ours_path = describe_device_path(foreach, torch_fused_updates, updates);
  return result;
}

int run_cuda(const Args& args) {
  TLKIT_CHECK(torch::cuda::is_available(),
              "--device cuda: CUDA is not available (this LibTorch was built without CUDA, or no "
              "GPU is visible); run without --device, or with --device cpu");
  TLKIT_CHECK(!args.reuse_memory,
              "--reuse-memory is a setting of the CPU heap (glibc); it does nothing with --device "
              "cuda, whose tensors come from LibTorch's caching allocator");
  tlkit::set_threads(args.threads);
  tlkit::optim::set_kernel_mode(args.tensor_ops ? tlkit::optim::KernelMode::kTensorOps
                                                : tlkit::optim::KernelMode::kOwn);
  const auto cases = select_cases(args.only);
  const torch::Device device(torch::kCUDA);
  BenchContext ctx;
  ctx.device = "cuda";
  ctx.cuda_devices = static_cast<int64_t>(torch::cuda::device_count());
  ctx.machine = machine_info();
  ctx.runs = args.runs;
  ctx.warmup = args.warmup;
  ctx.tlkit_mode = args.tensor_ops ? "tensor-op path (--tensor-ops)"
                                   : "default (own kernels: foreach for Adam/AdamW, tensor ops "
                                     "for the others)";
  ctx.allocator = "LibTorch's CUDA caching allocator";
  const auto params = vgg16_parameters(device);
  ctx.params = kVgg16Parameters;
  ctx.tensors = static_cast<int64_t>(params.size());
  DeviceCopyBandwidth bandwidth(kVgg16Parameters, device);
  ctx.stream_elements = bandwidth.elements();
  std::cout << "VGG16 parameters: " << ctx.params << " in " << ctx.tensors << " tensors on "
            << device << "; LibTorch " << ctx.machine.libtorch_version << "; " << args.runs
            << " runs\n";

  std::vector<OptimizerResult> results;
  for (const auto& c : cases) {
    results.push_back(measure_cuda(c, params, bandwidth, args));
    const auto& r = results.back();
    for (const double ms : r.triad.values()) ctx.triad_all.add(ms);
    std::cout << "  " << r.name << ": tlkit " << fixed(r.ours.median(), 3) << " ms, "
              << r.reference_name << " " << fixed(r.reference.median(), 3) << " ms, floor "
              << fixed(r.floor_ms(), 3) << " ms (copy " << fixed(r.triad_gbps(), 1)
              << " GB/s); tlkit ran " << r.ours_path << std::endl;
  }
  std::cout << "\n";
  print_table(std::cout, results, 3);
  const std::filesystem::path out = args.out;
  write_file_atomic(out / "optim_step_cuda.md", markdown_report_cuda(ctx, results));
  write_file_atomic(out / "optim_step_cuda.csv", csv_report_cuda(ctx, results));
  write_file_atomic(out / "optim_step_cuda.json", json_report_cuda(ctx, results));
  std::cout << "\nwrote " << (out / "optim_step_cuda.md").string() << " (.csv, .json)\n";

  bool all_met = true;
  for (const auto& r : results) {
    all_met = all_met && r.meets_floor_target() && r.meets_speedup_target();
  }
  std::cout << (all_met ? "all targets met\n" : "some targets missed; see the report\n");
  return args.check && !all_met ? 1 : 0;
}

int parse_int(const std::string& option, const std::string& value, int min) {
  int parsed = 0;
  try {
    std::size_t used = 0;
    parsed = std::stoi(value, &used);
    TLKIT_CHECK(used == value.size(), "");
  } catch (const std::exception&) {
    fail("option ", option, " needs an integer, got '", value, "'");
  }
  TLKIT_CHECK(parsed >= min, "option ", option, " must be at least ", min, ", got ", parsed);
  return parsed;
}

const char* const kUsage =
    "usage: optim_bench [--runs N] [--warmup N] [--threads N] [--only NAME,...] [--out DIR] "
    "[--check] [--tensor-ops] [--reuse-memory] [--device cpu|cuda]\n"
    "  --runs N       timed steps per optimizer; the median is reported (default 7)\n"
    "  --warmup N     untimed steps first, so optimizer state exists (default 2;\n"
    "                 5 with --reuse-memory)\n"
    "  --threads N    intra-op threads (default: every hardware thread)\n"
    "  --only LIST    optimizers to run: sgd, momentum, nesterov, adagrad, rmsprop,\n"
    "                 rmsprop-centered, adam, adam-amsgrad, adamw (default: all)\n"
    "  --out DIR      where optim_step_cpu.{md,csv,json} go (default bench/results)\n"
    "  --check        exit with status 1 when a target is missed\n"
    "  --tensor-ops   time tlkit's tensor-op path instead of its fused CPU kernels\n"
    "  --reuse-memory keep freed memory for reuse (glibc mallopt), so temporaries stop\n"
    "                 paying page faults; writes optim_step_cpu_reuse.{md,csv,json}\n"
    "  --device D     cpu (default) or cuda: parameters, gradients and state on the GPU,\n"
    "                 each step synchronised, the floor from a device-to-device copy;\n"
    "                 writes optim_step_cuda.{md,csv,json}\n"
    "example: optim_bench --threads 2 --runs 7 --only adam,adamw\n";

// Returns false when only --help was asked for.
bool parse_args(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    std::string option = argv[i];
    std::string value;
    const auto equals = option.find('=');
    if (equals != std::string::npos) {
      value = option.substr(equals + 1);
      option = option.substr(0, equals);
    }
    if (option == "--help" || option == "-h") return false;
    if (option == "--check" || option == "--tensor-ops" || option == "--reuse-memory") {
      (option == "--check"        ? args.check
       : option == "--tensor-ops" ? args.tensor_ops
                                  : args.reuse_memory) = true;
      continue;
    }
    if (equals == std::string::npos) {
      TLKIT_CHECK(i + 1 < argc, "option ", option, " needs a value; see --help");
      value = argv[++i];
    }
    if (option == "--runs")
      args.runs = parse_int(option, value, 1);
    else if (option == "--warmup")
      args.warmup = parse_int(option, value, 1);
    else if (option == "--threads")
      args.threads = parse_int(option, value, 0);
    else if (option == "--only")
      args.only = split_list(value);
    else if (option == "--out")
      args.out = value;
    else if (option == "--device") {
      TLKIT_CHECK(value == "cpu" || value == "cuda", "option --device takes cpu or cuda, got '",
                  value, "'");
      args.device = value;
    } else
      fail("unknown option '", option, "'; see --help");
  }
  if (args.warmup == 0) args.warmup = args.reuse_memory ? 5 : 2;
  return true;
}

// glibc returns freed blocks above its mmap threshold (at most 32 MiB) to the OS at once, so each
// large temporary tensor is a fresh mapping whose pages fault in again on first touch. Serving
// every allocation from the heap and never trimming it keeps freed blocks for reuse, as a caching
// allocator would: after a few steps the temporaries of a tensor-op step stop faulting.
void keep_freed_memory() {
#if defined(__GLIBC__)
  TLKIT_CHECK(mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1,
              "mallopt refused the --reuse-memory settings; run without --reuse-memory");
#else
  fail("--reuse-memory needs glibc's mallopt; run without it on this platform");
#endif
}

void write_reports(const std::filesystem::path& out, const std::string& stem,
                   const BenchContext& ctx, const std::vector<OptimizerResult>& results) {
  write_file_atomic(out / (stem + ".md"), markdown_report(ctx, results));
  write_file_atomic(out / (stem + ".csv"), csv_report(ctx, results));
  write_file_atomic(out / (stem + ".json"), json_report(ctx, results));
  std::cout << "\nwrote " << (out / (stem + ".md")).string() << " (.csv, .json)\n";
}

int run(const Args& args) {
  if (args.device == "cuda") return run_cuda(args);
  if (args.reuse_memory) keep_freed_memory();
  tlkit::set_threads(args.threads);
  // tlkit's own kernels; LibTorch's fused ones (2.x) are timed beside them.
  tlkit::optim::set_kernel_mode(args.tensor_ops ? tlkit::optim::KernelMode::kTensorOps
                                                : tlkit::optim::KernelMode::kOwn);
  const auto cases = select_cases(args.only);
  BenchContext ctx;
  ctx.machine = machine_info();
  ctx.runs = args.runs;
  ctx.warmup = args.warmup;
  ctx.tlkit_mode = args.tensor_ops ? "tensor-op path (--tensor-ops)" : "default (fused kernels)";
  ctx.allocator = args.reuse_memory
                      ? "glibc, freed memory kept in the heap for reuse (--reuse-memory)"
                      : "glibc defaults (large freed blocks go back to the OS)";
  const auto params = vgg16_parameters();
  ctx.params = kVgg16Parameters;
  ctx.tensors = static_cast<int64_t>(params.size());
  MemoryBandwidth bandwidth;
  ctx.stream_elements = bandwidth.elements();
  ctx.first_touch_ms_per_gib = bandwidth.first_touch_ms_per_gib();
  ctx.first_touch_us_per_fault = bandwidth.first_touch_us_per_fault();
  bandwidth.triad();  // untimed first passes
  bandwidth.in_place();
  std::cout << "VGG16 parameters: " << ctx.params << " in " << ctx.tensors << " tensors; "
            << ctx.machine.intra_op_threads << " threads; LibTorch " << ctx.machine.libtorch_version
            << "; " << args.runs << " runs\n";

  std::vector<OptimizerResult> results;
  for (const auto& c : cases) {
    results.push_back(measure(c, params, bandwidth, args));
    const auto& r = results.back();
    for (const double ms : r.triad.values()) ctx.triad_all.add(ms);
    std::cout << "  " << r.name << ": tlkit " << fixed(r.ours.median(), 1) << " ms, "
              << r.reference_name << " " << fixed(r.reference.median(), 1) << " ms, floor "
              << fixed(r.floor_ms(), 1) << " ms (triad " << fixed(r.triad_gbps(), 1)
              << " GB/s); tlkit ran " << r.ours_path << std::endl;
  }
  std::cout << "\n";
  print_table(std::cout, results);
  write_reports(args.out, args.reuse_memory ? "optim_step_cpu_reuse" : "optim_step_cpu", ctx,
                results);

  bool all_met = true;
  for (const auto& r : results) {
    all_met = all_met && r.meets_floor_target() && r.meets_speedup_target();
  }
  std::cout << (all_met ? "all targets met\n" : "some targets missed; see the report\n");
  return args.check && !all_met ? 1 : 0;
}

}  // namespace
}  // namespace tlkit::bench

int main(int argc, char** argv) {
  try {
    tlkit::bench::Args args;
    if (!tlkit::bench::parse_args(argc, argv, args)) {
      std::cout << tlkit::bench::kUsage;
      return 0;
    }
    return tlkit::bench::run(args);
  } catch (const std::exception& e) {
    std::cerr << "optim_bench: " << e.what() << "\n";
    return 2;
  }
}
