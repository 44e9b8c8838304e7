// Optimizer settings: names, keys, and the "name:key=value,..." text form.

#include <tlkit/core/strings.h>
#include <tlkit/optim/settings.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <tlkit/core/error.h>
#include <tlkit/core/spec.h>
#include <tlkit/optim/registry.h>

namespace tlkit::optim {
namespace {

using DoubleField = std::optional<double> OptimizerSettings::*;
using BoolField = std::optional<bool> OptimizerSettings::*;

// How one key is read, written and tested; exactly one of the fields is set (or betas).
struct Key {
  const char* name;
  DoubleField number = nullptr;
  BoolField flag = nullptr;
  bool betas = false;
};

const std::vector<Key>& all_keys() {
  static const std::vector<Key> keys = {
      {"lr", &OptimizerSettings::lr},
      {"momentum", &OptimizerSettings::momentum},
      {"dampening", &OptimizerSettings::dampening},
      {"nesterov", nullptr, &OptimizerSettings::nesterov},
      {"weight_decay", &OptimizerSettings::weight_decay},
      {"lr_decay", &OptimizerSettings::lr_decay},
      {"initial_accumulator_value", &OptimizerSettings::initial_accumulator_value},
      {"eps", &OptimizerSettings::eps},
      {"alpha", &OptimizerSettings::alpha},
      {"centered", nullptr, &OptimizerSettings::centered},
      {"betas", nullptr, nullptr, true},
      {"amsgrad", nullptr, &OptimizerSettings::amsgrad},
  };
  return keys;
}

const Key& find_key(const std::string& name) {
  for (const Key& key : all_keys()) {
    if (name == key.name) return key;
  }
  fail("unknown optimizer setting '", name, "'");
}

bool is_set(const Key& key, const OptimizerSettings& settings) {
  if (key.number) return (settings.*key.number).has_value();
  if (key.flag) return (settings.*key.flag).has_value();
  return settings.betas.has_value();
}

double parse_number(const std::string& key, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  TLKIT_CHECK(
      !text.empty() && end == text.c_str() + text.size() && errno == 0 && std::isfinite(value),
      "optimizer setting ", key, "='", text, "' is not a finite number (e.g. ", key, "=0.01)");
  return value;
}

bool parse_flag(const std::string& key, const std::string& text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  fail("optimizer setting ", key, "='", text, "' is not a boolean; use true/false or 1/0");
}

std::tuple<double, double> parse_betas(const std::string& text) {
  const auto slash = text.find('/');
  TLKIT_CHECK(slash != std::string::npos, "optimizer setting betas='", text,
              "' needs two values separated by '/', e.g. betas=0.9/0.999");
  return {parse_number("betas", trim(text.substr(0, slash))),
          parse_number("betas", trim(text.substr(slash + 1)))};
}

// The shortest decimal form that reads back to the same double.
std::string format_number(double value) {
  for (int precision = 6; precision <= 17; ++precision) {
    std::ostringstream out;
    out.precision(precision);
    out << value;
    if (std::strtod(out.str().c_str(), nullptr) == value) return out.str();
  }
  return std::to_string(value);
}

std::string format_value(const Key& key, const OptimizerSettings& settings) {
  if (key.number) return format_number(*(settings.*key.number));
  if (key.flag) return *(settings.*key.flag) ? "true" : "false";
  return format_number(std::get<0>(*settings.betas)) + "/" +
         format_number(std::get<1>(*settings.betas));
}

void set_value(const Key& key, OptimizerSettings& settings, const std::string& text) {
  if (key.number) {
    settings.*key.number = parse_number(key.name, text);
  } else if (key.flag) {
    settings.*key.flag = parse_flag(key.name, text);
  } else {
    settings.betas = parse_betas(text);
  }
}

}  // namespace

std::vector<std::string> optimizer_names() {
  std::vector<std::string> names;
  for (const auto& info : optimizer_registry()) names.push_back(info.name);
  return names;
}

std::vector<std::string> optimizer_setting_keys(const std::string& name) {
  return optimizer_info(name).keys;
}

void check_settings_apply(const std::string& name, const OptimizerSettings& settings) {
  const auto keys = optimizer_setting_keys(name);
  for (const Key& key : all_keys()) {
    const bool allowed = std::find(keys.begin(), keys.end(), key.name) != keys.end();
    TLKIT_CHECK(allowed || !is_set(key, settings), "optimizer '", name, "' has no setting '",
                key.name, "'; valid keys: ", join(keys));
  }
}

OptimizerSpec parse_optimizer_settings(const std::string& text) {
  const auto parsed = parse_spec(text, "optimizer spec", "adam:lr=0.001");
  OptimizerSpec spec;
  spec.name = parsed.name;
  std::transform(spec.name.begin(), spec.name.end(), spec.name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto keys = optimizer_setting_keys(spec.name);  // rejects unknown names
  check_spec_keys(parsed, keys, "optimizer");           // and unknown, repeated or bare keys
  for (const auto& [key, value] : parsed.keys) set_value(find_key(key), spec.settings, value);
  return spec;
}

std::string format_optimizer_settings(const OptimizerSpec& spec) {
  std::string out = spec.name;
  char separator = ':';
  for (const std::string& name : optimizer_setting_keys(spec.name)) {
    const Key& key = find_key(name);
    if (!is_set(key, spec.settings)) continue;
    out += separator + name + "=" + format_value(key, spec.settings);
    separator = ',';
  }
  return out;
}

std::optional<double> default_lr(const std::string& name) {
  return optimizer_info(name).default_lr;
}

double resolved_lr(const OptimizerSpec& spec) {
  if (spec.settings.lr) return *spec.settings.lr;
  const auto lr = default_lr(spec.name);
  TLKIT_CHECK(lr.has_value(), "optimizer '", spec.name,
              "' needs lr (torch.optim.SGD has no default learning rate), e.g. \"", spec.name,
              ":lr=0.01\"");
  return *lr;
}

}  // namespace tlkit::optim
