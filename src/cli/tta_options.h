#pragma once
// --tta none|flip|five-crop|ten-crop of `tlkit evaluate` and `tlkit predict`.

#include <string>

#include <cxxopts.hpp>

#include <tlkit/core/error.h>
#include <tlkit/data/tta.h>

#include "command.h"

namespace tlkit::cli {

inline void add_tta_option(cxxopts::Options& options) {
  options.add_options("Test-time augmentation")(
      "tta",
      "average the softmax over views of each image: none, flip (the image and its mirror), "
      "five-crop (4 corners + centre of the resized image) or ten-crop (and their mirrors)",
      cxxopts::value<std::string>()->default_value("none"));
}

// A bad value is a usage error naming the choices.
inline data::TtaMode tta_option(const cxxopts::ParseResult& result) {
  const auto name = result["tta"].as<std::string>();
  try {
    return data::parse_tta(name);
  } catch (const Error&) {
    throw UsageError("--tta " + name + ": use none, flip, five-crop or ten-crop");
  }
}

}  // namespace tlkit::cli
