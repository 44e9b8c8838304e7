#pragma once
// Writes TensorBoard event files (events.out.tfevents.<time>.<host>) with scalar summaries.
//
// The format is TFRecord: each record is [uint64 length][uint32 masked crc32c(length)][data]
// [uint32 masked crc32c(data)], where data is a serialized tensorflow.Event protocol buffer. The
// first record carries file_version "brain.Event:2"; each scalar is an Event{wall_time, step,
// summary{value{tag, simple_value}}}. Encoded by hand: no protobuf dependency.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace tlkit {

class TensorBoardWriter {
 public:
  // Creates `log_dir` and a new event file in it.
  explicit TensorBoardWriter(const std::filesystem::path& log_dir);

  void add_scalar(const std::string& tag, double value, std::int64_t step);
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& data);

  std::filesystem::path path_;
  std::ofstream out_;
};

// CRC-32C (Castagnoli), as TFRecord uses it.
std::uint32_t crc32c(const void* data, size_t size);
std::uint32_t masked_crc32c(const void* data, size_t size);

}  // namespace tlkit
