#pragma once
// Small text helpers shared by the spec parsers, the CIFAR meta reader and the CLI.

#include <string>
#include <vector>

namespace tlkit {

// `text` without leading and trailing blanks (spaces, tabs, CR, LF).
std::string trim(const std::string& text);

// `text` split at `separator`, each piece trimmed (an empty text is one empty piece).
std::vector<std::string> split_trimmed(const std::string& text, char separator);

// The items joined with `separator`.
std::string join(const std::vector<std::string>& items, const std::string& separator = ", ");

}  // namespace tlkit
