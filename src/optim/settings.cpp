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

struct NameKeys {
  const char* name;
  std::vector<std::string> keys;
};

const std::vector<NameKeys>& name_keys() {
  static const std::vector<NameKeys> table = {
      {"sgd", {"lr", "momentum", "dampening", "nesterov", "weight_decay"}},
      {"momentum", {"lr", "momentum", "dampening", "weight_decay"}},
      {"nesterov", {"lr", "momentum", "weight_decay"}},
      {"adagrad", {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"}},
      {"rmsprop", {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"}},
      {"adam", {"lr", "betas", "eps", "weight_decay", "amsgrad"}},
      {"adamw", {"lr", "betas", "eps", "weight_decay", "amsgrad"}},
  };
  return table;
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
  for (const auto& entry : name_keys()) names.emplace_back(entry.name);
  return names;
}

std::vector<std::string> optimizer_setting_keys(const std::string& name) {
  for (const auto& entry : name_keys()) {
    if (name == entry.name) return entry.keys;
  }
  fail("unknown optimizer '", name, "'; valid names: ", join(optimizer_names()));
}

void check_settings_apply(const std::string& name, const OptimizerSettings& settings) {
  const auto keys = optimizer_setting_keys(name);
  for (const Key& key : all_keys()) {
    const bool allowed = std::find(keys.begin(), keys.end(), key.name) != keys.end();
    TLKIT_CHECK(allowed || !is_set(key, settings), "optimizer '", name, "' has no setting '",
                key.name, "'; valid settings: ", join(keys));
  }
}

OptimizerSpec parse_optimizer_settings(const std::string& text) {
  OptimizerSpec spec;
  const auto colon = text.find(':');
  spec.name = trim(text.substr(0, colon));
  std::transform(spec.name.begin(), spec.name.end(), spec.name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto keys = optimizer_setting_keys(spec.name);  // rejects unknown names
  if (colon == std::string::npos) return spec;
  std::stringstream items(text.substr(colon + 1));
  std::string item;
  while (std::getline(items, item, ',')) {
    item = trim(item);
    if (item.empty()) continue;
    const auto equals = item.find('=');
    TLKIT_CHECK(equals != std::string::npos, "optimizer setting '", item,
                "' needs the form key=value, e.g. lr=0.01");
    const std::string key = trim(item.substr(0, equals));
    TLKIT_CHECK(std::find(keys.begin(), keys.end(), key) != keys.end(), "optimizer '", spec.name,
                "' has no setting '", key, "'; valid settings: ", join(keys));
    set_value(find_key(key), spec.settings, trim(item.substr(equals + 1)));
  }
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
  optimizer_setting_keys(name);  // rejects unknown names
  if (name == "adam" || name == "adamw") return 1e-3;
  if (name == "adagrad" || name == "rmsprop") return 1e-2;
  return std::nullopt;
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
