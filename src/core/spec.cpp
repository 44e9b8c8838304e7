#include <tlkit/core/spec.h>

#include <algorithm>

#include <tlkit/core/error.h>
#include <tlkit/core/strings.h>

namespace tlkit {

Spec parse_spec(const std::string& text, const std::string& what, const std::string& example) {
  Spec spec;
  const auto colon = text.find(':');
  spec.name = trim(text.substr(0, colon));
  TLKIT_CHECK(!spec.name.empty(), what, " '", text, "' has no name; write e.g. ", example);
  if (colon == std::string::npos) return spec;
  const auto rest = trim(text.substr(colon + 1));
  if (rest.empty()) return spec;
  for (const auto& item : split_trimmed(rest, ',')) {
    TLKIT_CHECK(!item.empty(), what, " '", text,
                "' has an empty item; separate key=value pairs with one ','");
    const auto equals = item.find('=');
    if (equals == std::string::npos) {
      spec.positional.push_back(item);
      continue;
    }
    const auto key = trim(item.substr(0, equals));
    TLKIT_CHECK(!key.empty(), what, " '", text, "' has a value without a key: '", item, "'");
    TLKIT_CHECK(spec.keys.count(key) == 0, what, " '", text, "' gives '", key,
                "' twice; give each key once");
    spec.keys[key] = trim(item.substr(equals + 1));
  }
  return spec;
}

void check_spec_keys(const Spec& spec, const std::vector<std::string>& valid,
                     const std::string& what, std::size_t max_positional) {
  const auto listed = valid.empty() ? std::string("none") : join(valid);
  TLKIT_CHECK(spec.positional.size() <= max_positional, what, " '", spec.name, "': '",
              spec.positional.size() > max_positional ? spec.positional[max_positional] : "",
              "' is not KEY=VALUE; valid keys: ", listed);
  for (const auto& entry : spec.keys) {
    TLKIT_CHECK(std::find(valid.begin(), valid.end(), entry.first) != valid.end(),
                "unknown key '", entry.first, "' for ", what, " '", spec.name,
                "'; valid keys: ", listed);
  }
}

}  // namespace tlkit
