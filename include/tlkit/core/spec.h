#pragma once
// The one grammar of tlkit's specs, `name[:key=value,...]`: optimizers ("adam:lr=1e-3"),
// schedules ("cosine:T_max=30", "warmup:2+cosine"), ... One parser, so every kind refuses the same
// mistakes the same way: an empty name or key, an empty item, a key given twice, a key the kind
// does not have (the error lists the valid ones).

#include <map>
#include <string>
#include <vector>

namespace tlkit {

struct Spec {
  std::string name;
  std::vector<std::string> positional;      // items without '=' (few kinds take one)
  std::map<std::string, std::string> keys;  // key -> raw value, spaces trimmed
};

// Parses `text`; `what` names the kind in errors ("optimizer spec") and `example` shows the form
// ("adam:lr=0.001"). Throws tlkit::Error on an empty name, an empty item or key, a key twice.
Spec parse_spec(const std::string& text, const std::string& what, const std::string& example);

// Throws tlkit::Error naming the first key of `spec` that is not in `valid` (or a positional item
// beyond `max_positional`), listing the valid keys; `what` names the kind ("optimizer").
void check_spec_keys(const Spec& spec, const std::vector<std::string>& valid,
                     const std::string& what, std::size_t max_positional = 0);

}  // namespace tlkit
