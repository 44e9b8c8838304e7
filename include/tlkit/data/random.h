#pragma once
// Portable random helpers for tlkit::data.
//
// std::uniform_*_distribution are implementation-defined (libstdc++ and libc++ draw different
// numbers), so shuffles and augmentations here use these helpers on std::mt19937_64, whose output
// the C++ standard fixes. The same seed then gives the same split, order and crops everywhere.

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace tlkit::data {

// SplitMix64 finaliser: a well-mixed 64-bit value from any 64-bit input (Steele et al. 2014).
std::uint64_t mix64(std::uint64_t value);

// A seed derived from a base seed and up to two more keys (e.g. epoch and sample index), so
// streams for different (seed, epoch, index) are independent of each other and of thread timing.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t key1, std::uint64_t key2 = 0);

// Uniform double in [0, 1) from the top 53 bits of one draw.
double uniform01(std::mt19937_64& rng);

// Uniform double in [low, high).
double uniform(std::mt19937_64& rng, double low, double high);

// Uniform integer in [0, n) without modulo bias (rejection sampling); n must be > 0.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n);

// A random permutation of 0..n-1 (Fisher-Yates) determined by `seed` alone.
std::vector<size_t> permutation(size_t n, std::uint64_t seed);

}  // namespace tlkit::data
