#include "spec_args.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>

namespace tlkit::schedule::detail {
namespace {

std::optional<double> to_double(const std::string& text) {
  if (text.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value))
    return std::nullopt;
  return value;
}

std::optional<std::int64_t> to_int(const std::string& text) {
  if (text.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (end != text.c_str() + text.size() || errno == ERANGE) return std::nullopt;
  // Step counts and sizes beyond 10^12 are typos, and would overflow the schedules' arithmetic
  // (2 * T_max; found by tests/fuzz/fuzz_specs).
  if (value > 1000000000000LL || value < -1000000000000LL) return std::nullopt;
  return static_cast<std::int64_t>(value);
}

}  // namespace

SpecPart parse_spec_part(const std::string& text) {
  return parse_spec(text, "schedule spec", "cosine:T_max=30");
}

SpecArgs::SpecArgs(SpecPart part, std::vector<std::string> valid_keys, std::size_t max_positional)
    : part_(std::move(part)) {
  check_spec_keys(part_, valid_keys, "schedule", max_positional);
}

void SpecArgs::bad_value(const std::string& key, const std::string& expected) const {
  fail("schedule '", part_.name, "': ", key, "='", raw(key), "' is not ", expected);
}

std::optional<double> SpecArgs::number(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto value = to_double(raw(key));
  if (!value) bad_value(key, "a number");
  return value;
}

double SpecArgs::number(const std::string& key, double fallback) const {
  return number(key).value_or(fallback);
}

std::optional<std::int64_t> SpecArgs::integer(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto value = to_int(raw(key));
  if (!value) bad_value(key, "an integer (at most 10^12 in size)");
  return value;
}

std::int64_t SpecArgs::integer(const std::string& key, std::int64_t fallback) const {
  return integer(key).value_or(fallback);
}

bool SpecArgs::boolean(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& value = raw(key);
  if (value == "true" || value == "1" || value == "yes" || value == "on") return true;
  if (value == "false" || value == "0" || value == "no" || value == "off") return false;
  bad_value(key, "true or false");
}

std::vector<double> SpecArgs::numbers(const std::string& key, std::vector<double> fallback) const {
  if (!has(key)) return fallback;
  std::vector<double> values;
  for (const auto& piece : split_trimmed(raw(key), '/')) {
    const auto value = to_double(piece);
    if (!value) bad_value(key, "a number or a '/'-separated list of numbers");
    values.push_back(*value);
  }
  return values;
}

std::vector<std::int64_t> SpecArgs::integers(const std::string& key,
                                             std::vector<std::int64_t> fallback) const {
  if (!has(key)) return fallback;
  std::vector<std::int64_t> values;
  for (const auto& piece : split_trimmed(raw(key), '/')) {
    const auto value = to_int(piece);
    if (!value) bad_value(key, "an integer or a '/'-separated list of integers");
    values.push_back(*value);
  }
  return values;
}

std::string SpecArgs::choice(const std::string& key, const std::vector<std::string>& choices,
                             std::string fallback) const {
  if (!has(key)) return fallback;
  const auto& value = raw(key);
  if (std::find(choices.begin(), choices.end(), value) == choices.end())
    bad_value(key, "one of " + join(choices));
  return value;
}

std::int64_t SpecArgs::need_total(std::int64_t total_steps, const std::string& what) const {
  TLKIT_CHECK(total_steps > 0, "schedule '", part_.name, "' needs ", what,
              " (its default comes from the total number of steps, which is not known here)");
  return total_steps;
}

}  // namespace tlkit::schedule::detail
