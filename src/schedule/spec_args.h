#pragma once
// Internal: the KEY=VALUE list of one schedule spec, with typed getters and clear errors.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <tlkit/core/spec.h>

namespace tlkit::schedule::detail {

// One part of a schedule spec, in tlkit's one spec grammar (core/spec.h); only warmup takes a
// positional item.
using SpecPart = Spec;

// parse_spec for schedules.
SpecPart parse_spec_part(const std::string& text);

class SpecArgs {
 public:
  // Throws for a key not in valid_keys, or more than max_positional items without '='.
  SpecArgs(SpecPart part, std::vector<std::string> valid_keys, std::size_t max_positional = 0);

  bool has(const std::string& key) const { return part_.keys.count(key) > 0; }
  double number(const std::string& key, double fallback) const;
  std::optional<double> number(const std::string& key) const;
  std::int64_t integer(const std::string& key, std::int64_t fallback) const;
  std::optional<std::int64_t> integer(const std::string& key) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::vector<double> numbers(const std::string& key, std::vector<double> fallback) const;
  std::vector<std::int64_t> integers(const std::string& key,
                                     std::vector<std::int64_t> fallback) const;
  // One of `choices`; throws listing them otherwise.
  std::string choice(const std::string& key, const std::vector<std::string>& choices,
                     std::string fallback) const;
  const std::vector<std::string>& positional() const { return part_.positional; }
  const std::string& name() const { return part_.name; }

  // Throws naming `what` (e.g. "T_max") when a default needs the total step count and it is 0.
  std::int64_t need_total(std::int64_t total_steps, const std::string& what) const;

 private:
  [[noreturn]] void bad_value(const std::string& key, const std::string& expected) const;
  const std::string& raw(const std::string& key) const { return part_.keys.at(key); }

  SpecPart part_;
};

}  // namespace tlkit::schedule::detail
