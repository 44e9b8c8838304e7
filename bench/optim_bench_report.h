#pragma once
// Results of the optimizer step benchmark (bench/optim_bench.cpp) and their Markdown, CSV and JSON
// forms. Every time is a median over the same rounds; the floor of each optimizer comes from the
// bandwidth passes interleaved with that optimizer's own steps, so a row's numbers all saw the same
// machine load.

#include <cstdint>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"

namespace tlkit::bench {

// Targets the benchmark checks (issue 2, item 6).
constexpr double kFloorRatioTarget = 1.5;   // tlkit step time <= 1.5 x its bandwidth floor
constexpr double kAdamSpeedupTarget = 2.5;  // Adam / AdamW >= 2.5 x faster than torch::optim

struct OptimizerResult {
  std::string name;             // as given to --only
  std::string label;            // configuration in words
  int bytes_per_param = 0;      // a single-pass kernel's memory traffic per parameter
  std::string traffic;          // which arrays it reads and writes
  std::string reference_name;   // LibTorch's equivalent
  bool speedup_target = false;  // does the Adam/AdamW speed-up target apply?
  std::string ours_path;        // which tlkit code path ran: fused kernel, tensor ops, mixed
  int64_t params = 0;           // parameters updated per step
  double stream_bytes = 0;      // bytes counted per bandwidth pass
  int stream_passes = 1;        // bandwidth passes per round, to match the step's bytes
  Samples ours, reference, triad, in_place;    // wall-clock ms (per pass for the bandwidth)
  Samples ours_cpu, reference_cpu, triad_cpu;  // process CPU ms, all threads
  double ours_faults_per_step = 0, reference_faults_per_step = 0;
  // LibTorch 2.x: the same optimizer on LibTorch's own fused kernel (KernelMode::kTorchFused),
  // timed in the same rounds; empty where LibTorch has none for it.
  Samples torch_fused;

  double bytes_per_step() const { return static_cast<double>(bytes_per_param) * params; }
  double gbps(double pass_ms) const { return stream_bytes / (pass_ms * 1e-3) / 1e9; }
  double triad_gbps() const { return gbps(triad.median()); }
  double in_place_gbps() const { return gbps(in_place.median()); }
  // Time to move bytes_per_param x params bytes at the triad's bandwidth.
  double floor_ms() const { return bytes_per_step() / (triad_gbps() * 1e9) * 1e3; }
  double floor_ratio() const { return ours.median() / floor_ms(); }
  // The same ratio from the least disturbed runs: fastest step over the fastest-triad floor.
  double best_floor_ratio() const {
    return ours.min() / (bytes_per_step() / (gbps(triad.min()) * 1e9) * 1e3);
  }
  // Against the in-place pass, whose access pattern is the optimizer's own.
  double in_place_ratio() const {
    return ours.median() / (bytes_per_step() / (in_place_gbps() * 1e9) * 1e3);
  }
  double speedup() const { return reference.median() / ours.median(); }
  // The same two ratios in CPU time, which other processes holding the cores do not inflate.
  double cpu_floor_ratio() const {
    return ours_cpu.median() / (bytes_per_step() / stream_bytes * triad_cpu.median());
  }
  double cpu_speedup() const { return reference_cpu.median() / ours_cpu.median(); }
  bool meets_floor_target() const { return floor_ratio() <= kFloorRatioTarget; }
  bool meets_speedup_target() const { return !speedup_target || speedup() >= kAdamSpeedupTarget; }
};

struct BenchContext {
  MachineInfo machine;
  int64_t params = 0;
  int64_t tensors = 0;
  int runs = 0;
  int warmup = 0;
  std::string tlkit_mode;  // tlkit kernel mode the run asked for
  std::string allocator;   // how freed memory was handled
  int64_t stream_elements = 0;
  double first_touch_ms_per_gib = 0;
  double first_touch_us_per_fault = 0;
  Samples triad_all;  // every triad pass of the run (with --device cuda: every copy pass)
  double triad_gbps_median() const {
    return 12.0 * stream_elements / (triad_all.median() * 1e-3) / 1e9;
  }
  // --device cuda: the floor's bandwidth comes from device-to-device copies (8 B per element).
  std::string device = "cpu";
  int64_t cuda_devices = 0;
  double copy_gbps_median() const {
    return 8.0 * stream_elements / (triad_all.median() * 1e-3) / 1e9;
  }
};

inline std::string percent(double fraction) { return fixed(100.0 * fraction, 0) + " %"; }

// The table on stdout at the end of a run.
inline void print_table(std::ostream& out, const std::vector<OptimizerResult>& results,
                        int digits = 1) {
  out << std::left << std::setw(18) << "optimizer" << std::right << std::setw(6) << "B/p"
      << std::setw(11) << "tlkit ms" << std::setw(11) << "torch ms" << std::setw(10) << "speed-up"
      << std::setw(11) << "floor ms" << std::setw(13) << "tlkit/floor"
      << "\n";
  for (const auto& r : results) {
    out << std::left << std::setw(18) << r.name << std::right << std::setw(6) << r.bytes_per_param
        << std::setw(11) << fixed(r.ours.median(), digits) << std::setw(11)
        << fixed(r.reference.median(), digits) << std::setw(9) << fixed(r.speedup(), 2) << "x"
        << std::setw(11) << fixed(r.floor_ms(), digits) << std::setw(13)
        << fixed(r.floor_ratio(), 2) << "\n";
  }
}

inline void markdown_header(std::ostream& md, const BenchContext& ctx) {
  const auto& m = ctx.machine;
  md << "# Optimizer step on CPU: tlkit::optim vs torch::optim vs the memory-bandwidth floor\n\n"
     << "One `step()` over VGG16's parameter shapes (" << ctx.params << " float32 parameters in "
     << ctx.tensors << " tensors) with random gradients. Generated by `optim_bench` "
     << "(see bench/README.md); every time is the median of " << ctx.runs << " runs after "
     << ctx.warmup << " warm-up steps.\n\n"
     << "| setting | value |\n|---|---|\n"
     << "| date (UTC) | " << m.date_utc << " |\n"
     << "| CPU | " << m.cpu_model << " |\n"
     << "| hardware threads (cores) | " << m.hardware_threads << " |\n"
     << "| intra-op threads used | " << m.intra_op_threads << " |\n"
     << "| LibTorch | " << m.libtorch_version << " |\n"
     << "| tlkit | " << m.tlkit_version << ", " << ctx.tlkit_mode << " |\n"
     << "| memory allocator | " << ctx.allocator << " |\n"
     << "| triad bandwidth | " << fixed(ctx.triad_gbps_median(), 2) << " GB/s, median of "
     << ctx.triad_all.size() << " passes over " << ctx.stream_elements
     << " floats per array (12 B/element); each round runs as many passes back to back as "
        "match the step's bytes |\n"
     << "| first touch of fresh memory | " << fixed(ctx.first_touch_ms_per_gib, 0)
     << " ms per GiB (" << fixed(ctx.first_touch_us_per_fault, 1)
     << " us per page fault): what each fresh temporary tensor costs |\n\n";
}

inline void markdown_table(std::ostream& md, const std::vector<OptimizerResult>& results) {
  md << "| optimizer | B/param | tlkit ms | torch::optim ms | speed-up | floor ms | tlkit/floor "
        "| best/best floor | within 1.5x floor | spread tlkit / torch / triad |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n";
  for (const auto& r : results) {
    md << "| " << r.name << " | " << r.bytes_per_param << " | " << fixed(r.ours.median(), 1)
       << " | " << fixed(r.reference.median(), 1) << " | " << fixed(r.speedup(), 2) << "x | "
       << fixed(r.floor_ms(), 1) << " | " << fixed(r.floor_ratio(), 2) << " | "
       << fixed(r.best_floor_ratio(), 2) << " | " << (r.meets_floor_target() ? "yes" : "NO")
       << " | " << percent(r.ours.spread()) << " / " << percent(r.reference.spread()) << " / "
       << percent(r.triad.spread()) << " |\n";
  }
}

inline void markdown_diagnostics(std::ostream& md, const std::vector<OptimizerResult>& results) {
  md << "\n## Diagnostics\n\n"
     << "| optimizer | configuration | compared with | tlkit path | page faults per step, "
        "tlkit / torch | triad GB/s | in-place GB/s | tlkit / in-place floor | CPU time: "
        "tlkit/floor | CPU time: speed-up |\n"
     << "|---|---|---|---|---|---:|---:|---:|---:|---:|\n";
  for (const auto& r : results) {
    md << "| " << r.name << " | " << r.label << " | " << r.reference_name << " | " << r.ours_path
       << " | " << fixed(r.ours_faults_per_step, 0) << " / "
       << fixed(r.reference_faults_per_step, 0) << " | " << fixed(r.triad_gbps(), 2) << " | "
       << fixed(r.in_place_gbps(), 2) << " | " << fixed(r.in_place_ratio(), 2) << " | "
       << fixed(r.cpu_floor_ratio(), 2) << " | " << fixed(r.cpu_speedup(), 2) << "x |\n";
  }
}

inline void markdown_targets(std::ostream& md, const std::vector<OptimizerResult>& results) {
  md << "\n## Targets\n\n";
  std::size_t floor_ok = 0;
  for (const auto& r : results) floor_ok += r.meets_floor_target() ? 1 : 0;
  md << "- Every optimizer within " << fixed(kFloorRatioTarget, 1) << "x of its floor: " << floor_ok
     << " of " << results.size() << (floor_ok == results.size() ? " (met)\n" : " (NOT met)\n");
  for (const auto& r : results) {
    if (!r.speedup_target) continue;
    md << "- " << r.name << " at least " << fixed(kAdamSpeedupTarget, 1) << "x faster than "
       << r.reference_name << ": " << fixed(r.speedup(), 2) << "x ("
       << (r.meets_speedup_target() ? "met" : "NOT met") << ")\n";
  }
}

inline void markdown_legend(std::ostream& md, const std::vector<OptimizerResult>& results) {
  md << "\n## Columns\n\n"
     << "- **B/param**: bytes a single-pass kernel must move per parameter (4-byte floats read "
        "plus written; the gradient is read only). **floor** = B/param x parameters / triad "
        "bandwidth of the passes interleaved with that optimizer's steps.\n"
     << "- **best/best floor**: the fastest tlkit step over the floor from the fastest triad "
        "pass; on a shared machine the least disturbed runs say most about the kernel itself.\n"
     << "- **speed-up**: torch::optim ms / tlkit ms, measured in alternation in the same rounds.\n"
     << "- **spread**: (max - min) / median of the runs: how noisy each number was.\n"
     << "- **in-place GB/s**: bandwidth of c[i] = s*c[i] + b[i] (12 B/element that really move: "
        "no write-allocate read, as in an optimizer step); **tlkit / in-place floor** near 1 means "
        "the step streams memory as fast as this machine allows.\n"
     << "- **CPU time** columns: the same ratios from process CPU time (all threads) instead of "
        "wall time; other processes holding the cores do not inflate them, so on a busy machine "
        "they are the steadier estimate.\n"
     << "- **page faults per step**: first touches of fresh pages, i.e. temporaries the step "
        "allocates; each costs the first-touch price in the table above.\n\n"
     << "## Memory traffic per parameter\n\n";
  for (const auto& r : results) {
    md << "- " << r.name << " (" << r.bytes_per_param << " B): " << r.traffic << "\n";
  }
}

// tlkit's own fused kernel, LibTorch's fused kernel, torch::optim and the floor, side by side.
inline void markdown_torch_fused(std::ostream& md, const std::vector<OptimizerResult>& results,
                                 int digits = 1) {
  bool any = false;
  for (const auto& r : results) any = any || !r.torch_fused.empty();
  if (!any) return;
  md << "## LibTorch's fused kernels (at::_fused_adam_ / _fused_adamw_ / _fused_sgd_)\n\n"
     << "Timed in the same rounds as the table above (median ms per step).\n\n"
     << "| optimizer | tlkit's kernel | LibTorch fused | torch::optim | floor | "
     << "LibTorch fused / tlkit |\n|---|---:|---:|---:|---:|---:|\n";
  for (const auto& r : results) {
    if (r.torch_fused.empty()) continue;
    md << "| " << r.name << " | " << fixed(r.ours.median(), digits) << " | "
       << fixed(r.torch_fused.median(), digits) << " | " << fixed(r.reference.median(), digits)
       << " | " << fixed(r.floor_ms(), digits) << " | "
       << fixed(r.torch_fused.median() / r.ours.median(), 2) << "x |\n";
  }
  md << "\n";
}

inline std::string markdown_report(const BenchContext& ctx,
                                   const std::vector<OptimizerResult>& results) {
  std::ostringstream md;
  markdown_header(md, ctx);
  markdown_table(md, results);
  markdown_torch_fused(md, results);
  markdown_targets(md, results);
  markdown_diagnostics(md, results);
  markdown_legend(md, results);
  return md.str();
}

inline std::string csv_report(const BenchContext& ctx,
                              const std::vector<OptimizerResult>& results) {
  std::ostringstream csv;
  csv << "optimizer,bytes_per_param,tlkit_ms,tlkit_ms_min,tlkit_ms_max,torch_ms,torch_ms_min,"
         "torch_ms_max,speedup,triad_gbps,in_place_gbps,floor_ms,tlkit_over_floor,"
         "best_over_best_floor,tlkit_over_in_place_floor,within_floor_target,speedup_target_met,"
         "tlkit_faults_per_step,torch_faults_per_step,cpu_tlkit_over_floor,cpu_speedup,tlkit_path,"
         "threads,params\n";
  for (const auto& r : results) {
    csv << r.name << "," << r.bytes_per_param << "," << fixed(r.ours.median(), 3) << ","
        << fixed(r.ours.min(), 3) << "," << fixed(r.ours.max(), 3) << ","
        << fixed(r.reference.median(), 3) << "," << fixed(r.reference.min(), 3) << ","
        << fixed(r.reference.max(), 3) << "," << fixed(r.speedup(), 4) << ","
        << fixed(r.triad_gbps(), 3) << "," << fixed(r.in_place_gbps(), 3) << ","
        << fixed(r.floor_ms(), 3) << "," << fixed(r.floor_ratio(), 4) << ","
        << fixed(r.best_floor_ratio(), 4) << "," << fixed(r.in_place_ratio(), 4) << ","
        << (r.meets_floor_target() ? 1 : 0) << ","
        << (r.speedup_target ? (r.meets_speedup_target() ? "1" : "0") : "") << ","
        << fixed(r.ours_faults_per_step, 0) << "," << fixed(r.reference_faults_per_step, 0) << ","
        << fixed(r.cpu_floor_ratio(), 4) << "," << fixed(r.cpu_speedup(), 4) << "," << r.ours_path
        << "," << ctx.machine.intra_op_threads << "," << r.params << "\n";
  }
  return csv.str();
}

inline std::string json_samples(const Samples& samples) {
  std::string out = "[";
  for (std::size_t i = 0; i < samples.size(); ++i) {
    out += (i ? ", " : "") + fixed(samples.values()[i], 3);
  }
  return out + "]";
}

inline void json_result(std::ostream& js, const OptimizerResult& r) {
  js << "    {\"name\": " << json_quote(r.name) << ", \"label\": " << json_quote(r.label)
     << ", \"bytes_per_param\": " << r.bytes_per_param
     << ", \"reference\": " << json_quote(r.reference_name)
     << ", \"tlkit_path\": " << json_quote(r.ours_path)
     << ",\n     \"tlkit_ms\": " << fixed(r.ours.median(), 3)
     << ", \"torch_ms\": " << fixed(r.reference.median(), 3)
     << ", \"speedup\": " << fixed(r.speedup(), 4)
     << ", \"triad_gbps\": " << fixed(r.triad_gbps(), 3)
     << ", \"in_place_gbps\": " << fixed(r.in_place_gbps(), 3)
     << ", \"stream_passes\": " << r.stream_passes << ", \"floor_ms\": " << fixed(r.floor_ms(), 3)
     << ", \"tlkit_over_floor\": " << fixed(r.floor_ratio(), 4)
     << ", \"best_over_best_floor\": " << fixed(r.best_floor_ratio(), 4)
     << ", \"tlkit_over_in_place_floor\": " << fixed(r.in_place_ratio(), 4)
     << ",\n     \"within_floor_target\": " << (r.meets_floor_target() ? "true" : "false")
     << ", \"speedup_target\": "
     << (r.speedup_target ? (r.meets_speedup_target() ? "true" : "false") : "null")
     << ", \"tlkit_faults_per_step\": " << fixed(r.ours_faults_per_step, 0)
     << ", \"torch_faults_per_step\": " << fixed(r.reference_faults_per_step, 0)
     << ", \"cpu_tlkit_over_floor\": " << fixed(r.cpu_floor_ratio(), 4)
     << ", \"cpu_speedup\": " << fixed(r.cpu_speedup(), 4)
     << ",\n     \"tlkit_samples_ms\": " << json_samples(r.ours)
     << ",\n     \"torch_samples_ms\": " << json_samples(r.reference)
     << ",\n     \"triad_samples_ms\": " << json_samples(r.triad)
     << ",\n     \"in_place_samples_ms\": " << json_samples(r.in_place)
     << ",\n     \"tlkit_cpu_samples_ms\": " << json_samples(r.ours_cpu)
     << ",\n     \"torch_cpu_samples_ms\": " << json_samples(r.reference_cpu)
     << ",\n     \"triad_cpu_samples_ms\": " << json_samples(r.triad_cpu) << "}";
}

inline std::string json_report(const BenchContext& ctx,
                               const std::vector<OptimizerResult>& results) {
  const auto& m = ctx.machine;
  std::ostringstream js;
  js << "{\n  \"benchmark\": \"optimizer step, VGG16 parameter shapes, CPU\",\n"
     << "  \"date_utc\": " << json_quote(m.date_utc) << ",\n"
     << "  \"cpu\": " << json_quote(m.cpu_model) << ",\n"
     << "  \"hardware_threads\": " << m.hardware_threads << ",\n"
     << "  \"threads\": " << m.intra_op_threads << ",\n"
     << "  \"libtorch\": " << json_quote(m.libtorch_version) << ",\n"
     << "  \"tlkit\": " << json_quote(m.tlkit_version) << ",\n"
     << "  \"tlkit_mode\": " << json_quote(ctx.tlkit_mode) << ",\n"
     << "  \"allocator\": " << json_quote(ctx.allocator) << ",\n"
     << "  \"params\": " << ctx.params << ",\n  \"tensors\": " << ctx.tensors << ",\n"
     << "  \"runs\": " << ctx.runs << ",\n  \"warmup\": " << ctx.warmup << ",\n"
     << "  \"stream_elements\": " << ctx.stream_elements << ",\n"
     << "  \"triad_gbps_median\": " << fixed(ctx.triad_gbps_median(), 3) << ",\n"
     << "  \"first_touch_ms_per_gib\": " << fixed(ctx.first_touch_ms_per_gib, 1) << ",\n"
     << "  \"first_touch_us_per_fault\": " << fixed(ctx.first_touch_us_per_fault, 2) << ",\n"
     << "  \"results\": [\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    json_result(js, results[i]);
    js << (i + 1 < results.size() ? ",\n" : "\n");
  }
  js << "  ]\n}\n";
  return js.str();
}

// --device cuda --------------------------------------------------------------------------------
// The same rows on the GPU. The floor's bandwidth is that of a device-to-device copy of a tensor
// as large as the parameter set (OptimizerResult::triad holds those copy passes, stream_bytes
// their 8 bytes per element); there is no CPU-time or page-fault column, which mean nothing for
// device kernels.

inline std::string markdown_report_cuda(const BenchContext& ctx,
                                        const std::vector<OptimizerResult>& results) {
  const auto& m = ctx.machine;
  std::ostringstream md;
  md << "# Optimizer step on CUDA: tlkit::optim vs torch::optim vs the device-copy floor\n\n"
     << "One `step()` over VGG16's parameter shapes (" << ctx.params << " float32 parameters in "
     << ctx.tensors << " tensors, on the GPU) with random gradients. Generated by `optim_bench "
     << "--device cuda` (see bench/README.md); every time is the median of " << ctx.runs
     << " runs after " << ctx.warmup
     << " warm-up steps, each step timed from a synchronised device to a synchronised device "
        "(torch::cuda::synchronize()).\n\n"
     << "| setting | value |\n|---|---|\n"
     << "| date (UTC) | " << m.date_utc << " |\n"
     << "| device | cuda:0 (" << ctx.cuda_devices << " CUDA device(s) visible) |\n"
     << "| host CPU | " << m.cpu_model << " |\n"
     << "| LibTorch | " << m.libtorch_version << " |\n"
     << "| tlkit | " << m.tlkit_version << ", " << ctx.tlkit_mode << " |\n"
     << "| memory allocator | " << ctx.allocator << " |\n"
     << "| copy bandwidth | " << fixed(ctx.copy_gbps_median(), 1) << " GB/s, median of "
     << ctx.triad_all.size() << " device-to-device copies of " << ctx.stream_elements
     << " floats (8 B/element: read + write); each round runs as many copies back to back as "
        "match the step's bytes |\n\n";
  md << "| optimizer | B/param | tlkit ms | torch::optim ms | speed-up | floor ms | tlkit/floor "
        "| best/best floor | within 1.5x floor | tlkit path | spread tlkit / torch / copy |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n";
  for (const auto& r : results) {
    md << "| " << r.name << " | " << r.bytes_per_param << " | " << fixed(r.ours.median(), 3)
       << " | " << fixed(r.reference.median(), 3) << " | " << fixed(r.speedup(), 2) << "x | "
       << fixed(r.floor_ms(), 3) << " | " << fixed(r.floor_ratio(), 2) << " | "
       << fixed(r.best_floor_ratio(), 2) << " | " << (r.meets_floor_target() ? "yes" : "NO")
       << " | " << r.ours_path << " | " << percent(r.ours.spread()) << " / "
       << percent(r.reference.spread()) << " / " << percent(r.triad.spread()) << " |\n";
  }
  bool any_torch_fused = false;
  for (const auto& r : results) any_torch_fused = any_torch_fused || !r.torch_fused.empty();
  if (any_torch_fused) md << "\n";
  markdown_torch_fused(md, results, 3);
  markdown_targets(md, results);
  md << "\n## Columns\n\n"
     << "- **B/param**: bytes a single-pass kernel must move per parameter (4-byte floats read "
        "plus written; the gradient is read only). **floor** = B/param x parameters / copy "
        "bandwidth of the copies interleaved with that optimizer's steps.\n"
     << "- **tlkit path**: tlkit's fused kernels are CPU kernels; on the GPU Adam and AdamW take "
        "the multi-tensor (foreach) path and the others one tensor op after another.\n"
     << "- **speed-up**: torch::optim ms / tlkit ms, measured in alternation in the same rounds.\n"
     << "- **spread**: (max - min) / median of the runs: how noisy each number was.\n\n"
     << "## Memory traffic per parameter\n\n";
  for (const auto& r : results) {
    md << "- " << r.name << " (" << r.bytes_per_param << " B): " << r.traffic << "\n";
  }
  return md.str();
}

inline std::string csv_report_cuda(const BenchContext& ctx,
                                   const std::vector<OptimizerResult>& results) {
  std::ostringstream csv;
  csv << "optimizer,bytes_per_param,tlkit_ms,tlkit_ms_min,tlkit_ms_max,torch_ms,torch_ms_min,"
         "torch_ms_max,speedup,copy_gbps,floor_ms,tlkit_over_floor,best_over_best_floor,"
         "within_floor_target,speedup_target_met,torch_fused_ms,tlkit_path,device,params\n";
  for (const auto& r : results) {
    csv << r.name << "," << r.bytes_per_param << "," << fixed(r.ours.median(), 4) << ","
        << fixed(r.ours.min(), 4) << "," << fixed(r.ours.max(), 4) << ","
        << fixed(r.reference.median(), 4) << "," << fixed(r.reference.min(), 4) << ","
        << fixed(r.reference.max(), 4) << "," << fixed(r.speedup(), 4) << ","
        << fixed(r.triad_gbps(), 3) << "," << fixed(r.floor_ms(), 4) << ","
        << fixed(r.floor_ratio(), 4) << "," << fixed(r.best_floor_ratio(), 4) << ","
        << (r.meets_floor_target() ? 1 : 0) << ","
        << (r.speedup_target ? (r.meets_speedup_target() ? "1" : "0") : "") << ","
        << (r.torch_fused.empty() ? std::string() : fixed(r.torch_fused.median(), 4)) << ","
        << r.ours_path << "," << ctx.device << "," << r.params << "\n";
  }
  return csv.str();
}

inline std::string json_report_cuda(const BenchContext& ctx,
                                    const std::vector<OptimizerResult>& results) {
  const auto& m = ctx.machine;
  std::ostringstream js;
  js << "{\n  \"benchmark\": \"optimizer step, VGG16 parameter shapes, CUDA\",\n"
     << "  \"date_utc\": " << json_quote(m.date_utc) << ",\n"
     << "  \"device\": " << json_quote(ctx.device) << ",\n"
     << "  \"cuda_devices\": " << ctx.cuda_devices << ",\n"
     << "  \"cpu\": " << json_quote(m.cpu_model) << ",\n"
     << "  \"libtorch\": " << json_quote(m.libtorch_version) << ",\n"
     << "  \"tlkit\": " << json_quote(m.tlkit_version) << ",\n"
     << "  \"tlkit_mode\": " << json_quote(ctx.tlkit_mode) << ",\n"
     << "  \"params\": " << ctx.params << ",\n  \"tensors\": " << ctx.tensors << ",\n"
     << "  \"runs\": " << ctx.runs << ",\n  \"warmup\": " << ctx.warmup << ",\n"
     << "  \"copy_elements\": " << ctx.stream_elements << ",\n"
     << "  \"copy_gbps_median\": " << fixed(ctx.copy_gbps_median(), 3) << ",\n"
     << "  \"results\": [\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    js << "    {\"name\": " << json_quote(r.name) << ", \"label\": " << json_quote(r.label)
       << ", \"bytes_per_param\": " << r.bytes_per_param
       << ", \"reference\": " << json_quote(r.reference_name)
       << ", \"tlkit_path\": " << json_quote(r.ours_path)
       << ",\n     \"tlkit_ms\": " << fixed(r.ours.median(), 4)
       << ", \"torch_ms\": " << fixed(r.reference.median(), 4)
       << ", \"speedup\": " << fixed(r.speedup(), 4)
       << ", \"copy_gbps\": " << fixed(r.triad_gbps(), 3)
       << ", \"stream_passes\": " << r.stream_passes << ", \"floor_ms\": " << fixed(r.floor_ms(), 4)
       << ", \"tlkit_over_floor\": " << fixed(r.floor_ratio(), 4)
       << ", \"best_over_best_floor\": " << fixed(r.best_floor_ratio(), 4)
       << ",\n     \"within_floor_target\": " << (r.meets_floor_target() ? "true" : "false")
       << ", \"speedup_target\": "
       << (r.speedup_target ? (r.meets_speedup_target() ? "true" : "false") : "null")
       << ", \"torch_fused_ms\": "
       << (r.torch_fused.empty() ? std::string("null") : fixed(r.torch_fused.median(), 4))
       << ",\n     \"tlkit_samples_ms\": " << json_samples(r.ours)
       << ",\n     \"torch_samples_ms\": " << json_samples(r.reference)
       << ",\n     \"copy_samples_ms\": " << json_samples(r.triad)
       << ",\n     \"torch_fused_samples_ms\": " << json_samples(r.torch_fused) << "}"
       << (i + 1 < results.size() ? ",\n" : "\n");
  }
  js << "  ]\n}\n";
  return js.str();
}

}  // namespace tlkit::bench
