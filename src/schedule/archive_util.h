#pragma once
// Internal helpers for reading and writing scheduler state in torch::serialize archives with
// clear errors (a missing key or a wrong type names the key and the schedule).

#include <cstdint>
#include <string>
#include <vector>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

namespace tlkit::schedule::detail {

void write_int(torch::serialize::OutputArchive& archive, const std::string& key,
               std::int64_t value);
void write_double(torch::serialize::OutputArchive& archive, const std::string& key, double value);
void write_doubles(torch::serialize::OutputArchive& archive, const std::string& key,
                   const std::vector<double>& values);
void write_string(torch::serialize::OutputArchive& archive, const std::string& key,
                  const std::string& value);

// Each reader throws tlkit::Error naming `owner` (e.g. "StepLR") and the key when the key is
// missing or holds another type.
std::int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key,
                      const std::string& owner);
double read_double(torch::serialize::InputArchive& archive, const std::string& key,
                   const std::string& owner);
std::vector<double> read_doubles(torch::serialize::InputArchive& archive, const std::string& key,
                                 const std::string& owner);
std::string read_string(torch::serialize::InputArchive& archive, const std::string& key,
                        const std::string& owner);

}  // namespace tlkit::schedule::detail
