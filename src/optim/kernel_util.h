#pragma once
// Internal: the machinery of the fused single-pass CPU kernels shared by all tlkit optimizers.
//
// An optimizer writes its per-element update once, as a generic lambda over "lanes":
//
//   fused_for_each<T>(n, [=](auto& p, auto g, auto& m) { m = m * beta + g; p = p - lr * m; },
//                     param_ptr, grad_ptr, state_ptr);
//
// Each argument after n is a `T*` (read and written back), a `const T*` (read only) or `Absent{}`
// (an optional state that is not there; the lambda sees an Absent and tests it with is_present).
// The lambda runs on SIMD vectors of T for the bulk of the range and on scalars for the tail, in
// parallel chunks of at least kGrainSize elements. Vector lanes use exactly the scalar IEEE
// operations, so both give the same bits; operations follow torch's order so results match it.
//
// Explicit vectors are needed because the compiler cannot vectorise std::sqrt under the default
// -fmath-errno (it keeps a call to set errno); SSE2 (x86-64) and NEON (AArch64) have vector
// square roots. Other targets get the scalar loop.

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <tuple>
#include <type_traits>
#include <utility>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <tlkit/optim/kernel_mode.h>

#if defined(__GNUC__) && (defined(__SSE2__) || (defined(__aarch64__) && defined(__ARM_NEON)))
#define TLKIT_OPTIM_SIMD 1
#if defined(__SSE2__)
#include <emmintrin.h>
#else
#include <arm_neon.h>
#endif
#else
#define TLKIT_OPTIM_SIMD 0
#endif

namespace tlkit::optim::detail {

// Elements per parallel chunk: small tensors run inline, large ones split across threads.
inline constexpr std::int64_t kGrainSize = 32768;

// A state array that this update does not have (e.g. the AMSGrad maximum when amsgrad is off).
struct Absent {};

template <typename X>
inline constexpr bool is_present = !std::is_same_v<std::decay_t<X>, Absent>;

// ---------------------------------------------------------------- lanes: scalar or SIMD vector
template <typename T>
struct Simd {
  using Vec = T;
  static constexpr int kLanes = 1;
};

inline float lane_sqrt(float x) { return std::sqrt(x); }
inline double lane_sqrt(double x) { return std::sqrt(x); }

// torch.maximum: NaN in either argument gives NaN.
template <typename T>
inline T lane_max_scalar(T a, T b) {
  return (a != a || a > b) ? a : b;
}
inline float lane_max(float a, float b) { return lane_max_scalar(a, b); }
inline double lane_max(double a, double b) { return lane_max_scalar(a, b); }

#if TLKIT_OPTIM_SIMD
template <>
struct Simd<float> {
  typedef float Vec __attribute__((vector_size(16)));
  static constexpr int kLanes = 4;
};
template <>
struct Simd<double> {
  typedef double Vec __attribute__((vector_size(16)));
  static constexpr int kLanes = 2;
};
using F32x4 = Simd<float>::Vec;
using F64x2 = Simd<double>::Vec;

#if defined(__SSE2__)
inline F32x4 lane_sqrt(F32x4 x) {
  return reinterpret_cast<F32x4>(_mm_sqrt_ps(reinterpret_cast<__m128>(x)));
}
inline F64x2 lane_sqrt(F64x2 x) {
  return reinterpret_cast<F64x2>(_mm_sqrt_pd(reinterpret_cast<__m128d>(x)));
}
#else
inline F32x4 lane_sqrt(F32x4 x) {
  return reinterpret_cast<F32x4>(vsqrtq_f32(reinterpret_cast<float32x4_t>(x)));
}
inline F64x2 lane_sqrt(F64x2 x) {
  return reinterpret_cast<F64x2>(vsqrtq_f64(reinterpret_cast<float64x2_t>(x)));
}
#endif

#if defined(__SSE2__)
// a where a > b or a is NaN, else b: NaN in either argument gives NaN, as torch.maximum.
inline F32x4 lane_max(F32x4 a, F32x4 b) {
  const __m128 x = reinterpret_cast<__m128>(a), y = reinterpret_cast<__m128>(b);
  const __m128 take_x = _mm_or_ps(_mm_cmpgt_ps(x, y), _mm_cmpunord_ps(x, x));
  return reinterpret_cast<F32x4>(_mm_or_ps(_mm_and_ps(take_x, x), _mm_andnot_ps(take_x, y)));
}
inline F64x2 lane_max(F64x2 a, F64x2 b) {
  const __m128d x = reinterpret_cast<__m128d>(a), y = reinterpret_cast<__m128d>(b);
  const __m128d take_x = _mm_or_pd(_mm_cmpgt_pd(x, y), _mm_cmpunord_pd(x, x));
  return reinterpret_cast<F64x2>(_mm_or_pd(_mm_and_pd(take_x, x), _mm_andnot_pd(take_x, y)));
}
#else
// AArch64 FMAX returns NaN when either argument is NaN, as torch.maximum.
inline F32x4 lane_max(F32x4 a, F32x4 b) {
  return reinterpret_cast<F32x4>(
      vmaxq_f32(reinterpret_cast<float32x4_t>(a), reinterpret_cast<float32x4_t>(b)));
}
inline F64x2 lane_max(F64x2 a, F64x2 b) {
  return reinterpret_cast<F64x2>(
      vmaxq_f64(reinterpret_cast<float64x2_t>(a), reinterpret_cast<float64x2_t>(b)));
}
#endif
#endif

// ---------------------------------------------------------------- loading and storing lanes
template <typename V, typename T>
inline V load_lane(const T* data, std::int64_t i) {
  V value;
  std::memcpy(&value, data + i, sizeof(V));
  return value;
}
template <typename V>
inline Absent load_lane(Absent, std::int64_t) {
  return {};
}

template <typename V, typename T>
inline void store_lane(T* data, std::int64_t i, const V& value) {
  if constexpr (!std::is_const_v<T>) std::memcpy(data + i, &value, sizeof(V));
}
template <typename V>
inline void store_lane(Absent, std::int64_t, const Absent&) {}

template <typename V, typename Update, std::size_t... I, typename... Arrays>
inline void update_at(std::int64_t i, const Update& update, std::index_sequence<I...>,
                      Arrays... arrays) {
  auto lanes = std::make_tuple(load_lane<V>(arrays, i)...);
  update(std::get<I>(lanes)...);
  (store_lane<V>(arrays, i, std::get<I>(lanes)), ...);
}

// Runs update over elements [begin, end): SIMD vectors first, then the scalar tail.
template <typename T, typename Update, typename... Arrays>
inline void update_range(std::int64_t begin, std::int64_t end, const Update& update,
                         Arrays... arrays) {
  using Vec = typename Simd<T>::Vec;
  constexpr int kLanes = Simd<T>::kLanes;
  const auto indices = std::index_sequence_for<Arrays...>{};
  std::int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) update_at<Vec>(i, update, indices, arrays...);
  for (; i < end; ++i) update_at<T>(i, update, indices, arrays...);
}

// Runs update over elements [0, n) of the arrays in one pass, in parallel chunks.
template <typename T, typename Update, typename... Arrays>
void fused_for_each(std::int64_t n, const Update& update, Arrays... arrays) {
  at::parallel_for(0, n, kGrainSize, [&](std::int64_t begin, std::int64_t end) {
    update_range<T>(begin, end, update, arrays...);
  });
}

// Calls f(data) when present, f(Absent{}) otherwise: one instantiation per combination.
template <typename T, typename F>
inline void with_optional(bool present, T* data, const F& f) {
  if (present) {
    f(data);
  } else {
    f(Absent{});
  }
}

// Typed data pointer of a tensor the fused kernel may use.
template <typename T>
inline T* data_of(const at::Tensor& tensor) {
  return tensor.defined() ? tensor.data_ptr<std::remove_const_t<T>>() : nullptr;
}

// ---------------------------------------------------------------- when the fused kernel applies
// True when the kernel mode allows it and every defined tensor is a dense, contiguous CPU tensor
// of the first tensor's dtype (float or double) and element count, without lazy neg/conj bits.
bool fused_cpu_applies(std::initializer_list<at::Tensor> tensors);

// True when a parameter takes the multi-tensor (foreach) path: kForeach, or kAuto off the CPU.
bool foreach_applies(const at::Tensor& param);
// Counts updates done by the foreach path (tlkit::optim::foreach_update_count).
void count_foreach_updates(std::uint64_t params);
// Counts updates done by LibTorch's fused kernels (tlkit::optim::torch_fused_update_count).
void count_torch_fused_updates(std::uint64_t params);

// After a fused update of param: bumps its version counter (as an in-place op would, so autograd
// still detects a modified saved tensor) and counts the update (tlkit::optim::fused_update_count).
void finish_fused_update(const at::Tensor& param);

}  // namespace tlkit::optim::detail
