#include <tlkit/core/tensorboard.h>

#include <array>
#include <chrono>
#include <cstring>

#include <unistd.h>

#include <tlkit/core/error.h>
#include <tlkit/core/run_folder.h>

namespace fs = std::filesystem;

namespace tlkit {
namespace {

std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    table[i] = crc;
  }
  return table;
}

// Protocol-buffer wire encoding, just what Event/Summary need.
void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}
void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire_type));
}
template <typename T>
void put_fixed(std::string& out, int field, int wire_type, T value) {
  put_tag(out, field, wire_type);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // little-endian host
  out.append(bytes, sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

double wall_time_now() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

std::string event_header(double wall_time, std::int64_t step) {
  std::string event;
  put_fixed(event, 1, 1, wall_time);  // Event.wall_time (double)
  put_tag(event, 2, 0);               // Event.step (int64)
  put_varint(event, static_cast<std::uint64_t>(step));
  return event;
}

}  // namespace

std::uint32_t crc32c(const void* data, size_t size) {
  static const auto table = make_crc32c_table();
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

std::uint32_t masked_crc32c(const void* data, size_t size) {
  const std::uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

TensorBoardWriter::TensorBoardWriter(const fs::path& log_dir) {
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  TLKIT_CHECK(!ec, "cannot create TensorBoard folder '", log_dir.string(), "': ", ec.message());
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  const double now = wall_time_now();
  path_ = log_dir / ("events.out.tfevents." + std::to_string(static_cast<long long>(now)) + "." +
                     host + "." + std::to_string(::getpid()));
  note_written(path_);
  out_.open(path_, std::ios::binary | std::ios::trunc);
  TLKIT_CHECK(out_.is_open(), "cannot write TensorBoard events to '", path_.string(), "'");
  std::string event = event_header(now, 0);
  put_bytes(event, 3, "brain.Event:2");  // Event.file_version
  write_record(event);
  flush();
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, std::int64_t step) {
  std::string summary_value;
  put_bytes(summary_value, 1, tag);                           // Summary.Value.tag
  put_fixed(summary_value, 2, 5, static_cast<float>(value));  // Summary.Value.simple_value
  std::string summary;
  put_bytes(summary, 1, summary_value);  // Summary.value
  std::string event = event_header(wall_time_now(), step);
  put_bytes(event, 5, summary);  // Event.summary
  write_record(event);
}

void TensorBoardWriter::flush() { out_.flush(); }

void TensorBoardWriter::write_record(const std::string& data) {
  const std::uint64_t length = data.size();
  char header[12];
  std::memcpy(header, &length, 8);
  const std::uint32_t length_crc = masked_crc32c(header, 8);
  std::memcpy(header + 8, &length_crc, 4);
  const std::uint32_t data_crc = masked_crc32c(data.data(), data.size());
  out_.write(header, 12);
  out_.write(data.data(), static_cast<std::streamsize>(data.size()));
  out_.write(reinterpret_cast<const char*>(&data_crc), 4);
  TLKIT_CHECK(out_.good(), "writing TensorBoard events to '", path_.string(), "' failed");
}

}  // namespace tlkit
