#pragma once
// NumPy .npy files (format 1.0 written; 1.0, 2.0 and 3.0 read), streamed.
//
// NpyWriter appends rows batch by batch to a temporary file whose header reserves a fixed-width
// shape field; commit() patches the real row count into the header and renames the file onto its
// target (tlkit::AtomicFile), so memory does not grow with the row count and a failed run leaves
// no half-written file. NpyReader reads the header and then rows in chunks.
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

#include <tlkit/core/atomic_file.h>

namespace tlkit {

// The descr string ("<f4", "<i8", "|u1", ...) of a scalar type; throws for unsupported types.
std::string npy_descr(at::ScalarType dtype);

// Streaming writer of a C-order array of shape [rows, row_shape...].
class NpyWriter {
 public:
  NpyWriter(std::filesystem::path path, at::ScalarType dtype, std::vector<std::int64_t> row_shape);

  // Appends rows: a tensor of shape [n, row_shape...] (any device; converted to `dtype` only if
  // the conversion is exact in kind, i.e. floating to floating or integral to integral).
  void append(const at::Tensor& rows);
  std::int64_t rows() const { return rows_; }
  const std::vector<std::int64_t>& row_shape() const { return row_shape_; }
  // Writes the final shape into the header and moves the file onto its path.
  void commit();

 private:
  std::string header(std::int64_t rows) const;

  AtomicFile file_;
  at::ScalarType dtype_;
  std::vector<std::int64_t> row_shape_;
  std::int64_t row_numel_ = 1;
  std::int64_t rows_ = 0;
  size_t header_size_ = 0;
};

// Writes a whole tensor (contiguous, CPU copy made if needed) atomically.
void write_npy(const std::filesystem::path& path, const at::Tensor& tensor);

// Reader: header first, then rows in order.
class NpyReader {
 public:
  explicit NpyReader(std::filesystem::path path);

  at::ScalarType dtype() const { return dtype_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t rows() const { return shape_.empty() ? 1 : shape_[0]; }
  std::int64_t rows_left() const { return rows() - next_row_; }
  // The next min(count, rows_left()) rows as a CPU tensor of shape [n, shape[1:]...].
  at::Tensor read_rows(std::int64_t count);
  // Everything that is left (the whole array when nothing was read yet).
  at::Tensor read_all();

 private:
  std::filesystem::path path_;
  std::ifstream in_;
  at::ScalarType dtype_;
  std::vector<std::int64_t> shape_;
  std::int64_t row_bytes_ = 0;
  std::int64_t next_row_ = 0;
};

// Reads a whole .npy file.
at::Tensor read_npy(const std::filesystem::path& path);

}  // namespace tlkit
