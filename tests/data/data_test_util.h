#pragma once
// Helpers for the tlkit::data tests: the torchvision reference records and small file writers.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "support/test_support.h"

namespace tlkit::test {

// The records of a file written by a scripts/gen_*_reference.py (`NAME DTYPE NDIM DIMS VALUES`),
// by name.
inline std::map<std::string, torch::Tensor> read_reference_records(
    const std::filesystem::path& file) {
  std::map<std::string, torch::Tensor> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name, dtype;
    int64_t ndim = 0;
    fields >> name >> dtype >> ndim;
    std::vector<int64_t> shape(static_cast<size_t>(ndim));
    for (auto& d : shape) fields >> d;
    std::vector<double> values;
    for (double v; fields >> v;) values.push_back(v);
    auto tensor = torch::tensor(values, torch::kFloat64).reshape(shape);
    if (dtype == "uint8")
      tensor = tensor.to(torch::kUInt8);
    else if (dtype == "int64")
      tensor = tensor.to(torch::kInt64);
    else if (dtype == "float32")
      tensor = tensor.to(torch::kFloat32);
    out[name] = tensor;
  }
  return out;
}

// The records of scripts/gen_data_reference.py (data_reference.txt), by name.
inline const std::map<std::string, torch::Tensor>& data_reference() {
  static const std::map<std::string, torch::Tensor> records =
      read_reference_records(test_data_dir() / "data_reference.txt");
  return records;
}

inline torch::Tensor reference(const std::string& name) {
  const auto& records = data_reference();
  const auto it = records.find(name);
  if (it == records.end()) {
    ADD_FAILURE() << "reference record '" << name << "' missing from "
                  << (test_data_dir() / "data_reference.txt") << " (scripts/gen_data_reference.py)";
    return {};
  }
  return it->second;
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs Debian's python3 (with torch/numpy) on a program (no single quotes in it) with arguments;
// returns its output and fails the test on error.
inline std::string python(const std::string& program,
                          const std::vector<std::string>& arguments = {}) {
  std::string command = torch_python() + " -c '" + program + "'";
  for (const auto& argument : arguments) command += " '" + argument + "'";
  const auto result = run_command(command);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return result.output;
}

}  // namespace tlkit::test
