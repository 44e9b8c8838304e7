#pragma once
// Models for the ONNX export tests beyond tlkit's small VGGs: those of
// tests/model/make_onnx_fixtures.py.

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "model/fixtures.h"

namespace tlkit::test {

// mixed.pt and unsupported.pt from make_onnx_fixtures.py, written once per process.
inline std::filesystem::path onnx_fixture(const std::string& name) {
  static const auto dir = [] {
    const auto out = model_cache_dir() / "onnx";
    const auto result = run_command(torch_python() + " " +
                                    quoted(source_dir() / "tests/model/make_onnx_fixtures.py") +
                                    " --out " + quoted(out));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return out;
  }();
  return dir / name;
}

}  // namespace tlkit::test
