#include <tlkit/core/npy.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <sstream>

#include <ATen/ATen.h>

#include <tlkit/core/error.h>

namespace fs = std::filesystem;

namespace tlkit {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr size_t kAlignment = 64;

struct DtypeName {
  at::ScalarType type;
  const char* descr;
};
constexpr DtypeName kDtypes[] = {
    {at::kFloat, "<f4"}, {at::kDouble, "<f8"}, {at::kHalf, "<f2"},
    {at::kLong, "<i8"},  {at::kInt, "<i4"},    {at::kShort, "<i2"},
    {at::kChar, "|i1"},  {at::kByte, "|u1"},   {at::kBool, "|b1"},
};

at::ScalarType dtype_from_descr(std::string descr, const fs::path& path) {
  TLKIT_CHECK(!descr.empty() && descr[0] != '>', "'", path.string(), "': big-endian .npy data ('",
              descr, "') is not supported; save it little-endian (numpy: arr.astype('<f4'))");
  if (descr[0] == '=') descr[0] = '<';
  for (const auto& d : kDtypes) {
    if (descr == d.descr ||
        (descr.size() == 3 && descr[0] == '<' && descr.substr(1) == d.descr + 1))
      return d.type;
  }
  fail("'", path.string(), "': unsupported .npy dtype '", descr,
       "'; use float32/float64/float16/int64/int32/int16/int8/uint8/bool");
}

std::string shape_tuple(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) out << ",";
  out << ")";
  return out.str();
}

// Magic, version 1.0, header length and the dict, padded with spaces to `total` bytes (or to the
// next multiple of 64 when total is 0), ending in '\n'.
std::string make_preamble(const std::string& descr, const std::vector<std::int64_t>& shape,
                          size_t total) {
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  const size_t fixed = kMagicSize + 2 + 2;
  if (total == 0) total = ((fixed + dict.size() + 1 + kAlignment - 1) / kAlignment) * kAlignment;
  TLKIT_CHECK(fixed + dict.size() + 1 <= total,
              "internal: .npy header does not fit its reserved size");
  const size_t header_len = total - fixed;
  dict.resize(header_len - 1, ' ');
  dict += '\n';
  std::string out(kMagic, kMagicSize);
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  out += static_cast<char>(header_len & 0xFF);
  out += static_cast<char>((header_len >> 8) & 0xFF);
  return out + dict;
}

std::string dict_value(const std::string& dict, const std::string& key, const fs::path& path) {
  const auto at = dict.find("'" + key + "'");
  TLKIT_CHECK(at != std::string::npos, "'", path.string(), "': .npy header has no '", key, "'");
  auto start = dict.find(':', at);
  TLKIT_CHECK(start != std::string::npos, "'", path.string(), "': malformed .npy header");
  ++start;
  while (start < dict.size() && dict[start] == ' ') ++start;
  size_t end = start;
  if (dict[start] == '\'') {
    end = dict.find('\'', start + 1);
    return dict.substr(start + 1, end - start - 1);
  }
  if (dict[start] == '(') return dict.substr(start + 1, dict.find(')', start) - start - 1);
  while (end < dict.size() && dict[end] != ',' && dict[end] != '}') ++end;
  return dict.substr(start, end - start);
}

std::vector<std::int64_t> parse_shape(const std::string& tuple, const fs::path& path) {
  std::vector<std::int64_t> shape;
  std::string item;
  std::istringstream in(tuple);
  while (std::getline(in, item, ',')) {
    const auto first = item.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    // A dimension is digits and nothing else ("2:" or "5}2" is a damaged header, not 2 or 5;
    // found by tests/fuzz/fuzz_npy).
    const auto last = item.find_last_not_of(' ');
    auto digits = item.substr(first, last + 1 - first);
    if (digits.size() > 1 && digits.back() == 'L') digits.pop_back();  // Python 2's numpy: 3L
    std::size_t used = 0;
    try {
      shape.push_back(std::stoll(digits, &used));
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != digits.size() || digits[0] == '+')
      fail("'", path.string(), "': bad shape '(", tuple, ")' in .npy header");
    TLKIT_CHECK(shape.back() >= 0, "'", path.string(), "': negative dimension in .npy header");
  }
  return shape;
}

bool same_kind(at::ScalarType a, at::ScalarType b) {
  return c10::isFloatingType(a) == c10::isFloatingType(b) && (a == at::kBool) == (b == at::kBool);
}

}  // namespace

std::string npy_descr(at::ScalarType dtype) {
  for (const auto& d : kDtypes) {
    if (d.type == dtype) return d.descr;
  }
  fail("cannot write a ", c10::toString(dtype),
       " tensor as .npy; convert it to float32 or int64 first");
}

NpyWriter::NpyWriter(fs::path path, at::ScalarType dtype, std::vector<std::int64_t> row_shape)
    : file_(std::move(path)), dtype_(dtype), row_shape_(std::move(row_shape)) {
  for (const auto d : row_shape_) {
    TLKIT_CHECK(d >= 0, "NpyWriter: negative dimension in row shape");
    row_numel_ *= d;
  }
  // Reserve room for the largest row count, so commit() can patch the header in place.
  std::vector<std::int64_t> widest{std::numeric_limits<std::int64_t>::max()};
  widest.insert(widest.end(), row_shape_.begin(), row_shape_.end());
  header_size_ = make_preamble(npy_descr(dtype_), widest, 0).size();
  const std::string preamble = header(0);
  file_.stream().write(preamble.data(), static_cast<std::streamsize>(preamble.size()));
}

std::string NpyWriter::header(std::int64_t rows) const {
  std::vector<std::int64_t> shape{rows};
  shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
  return make_preamble(npy_descr(dtype_), shape, header_size_);
}

void NpyWriter::append(const at::Tensor& rows) {
  const auto path = file_.target().string();
  TLKIT_CHECK(rows.dim() == static_cast<int64_t>(row_shape_.size()) + 1, "'", path,
              "': appending rows of shape ", rows.sizes(), " to an array of rows ",
              at::IntArrayRef(row_shape_));
  TLKIT_CHECK(rows.sizes().slice(1) == at::IntArrayRef(row_shape_), "'", path,
              "': appending rows of shape ", rows.sizes(), " to an array of rows ",
              at::IntArrayRef(row_shape_));
  TLKIT_CHECK(same_kind(rows.scalar_type(), dtype_), "'", path, "': appending ", rows.scalar_type(),
              " rows to a ", dtype_, " array");
  const at::Tensor data = rows.to(at::kCPU, dtype_).contiguous();
  errno = 0;
  file_.stream().write(static_cast<const char*>(data.data_ptr()),
                       static_cast<std::streamsize>(data.nbytes()));
  TLKIT_CHECK(file_.stream().good(), "writing '", path,
              "' failed: ", std::strerror(errno != 0 ? errno : EIO), " (is the disk full?)");
  rows_ += rows.size(0);
}

void NpyWriter::commit() {
  auto& out = file_.stream();
  const std::string preamble = header(rows_);
  out.seekp(0);
  out.write(preamble.data(), static_cast<std::streamsize>(preamble.size()));
  file_.commit();
}

void write_npy(const fs::path& path, const at::Tensor& tensor) {
  TLKIT_CHECK(tensor.dim() >= 1, "write_npy('", path.string(), "'): need at least one dimension");
  NpyWriter writer(path, tensor.scalar_type(), tensor.sizes().slice(1).vec());
  writer.append(tensor);
  writer.commit();
}

NpyReader::NpyReader(fs::path path) : path_(std::move(path)), in_(path_, std::ios::binary) {
  const auto name = path_.string();
  TLKIT_CHECK(in_.is_open(), "cannot read '", name, "': ", std::strerror(errno));
  char magic[kMagicSize + 2] = {};
  in_.read(magic, sizeof(magic));
  TLKIT_CHECK(in_.good() && std::memcmp(magic, kMagic, kMagicSize) == 0, "'", name,
              "' is not a NumPy .npy file (bad magic); write it with numpy.save");
  const int major = static_cast<unsigned char>(magic[kMagicSize]);
  TLKIT_CHECK(major >= 1 && major <= 3, "'", name, "': unsupported .npy version ", major);
  unsigned char len_bytes[4] = {};
  const int len_size = major == 1 ? 2 : 4;
  in_.read(reinterpret_cast<char*>(len_bytes), len_size);
  size_t header_len = 0;
  for (int i = len_size - 1; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
  // The header must fit in the file (a corrupt length would allocate gigabytes; found by
  // tests/fuzz/fuzz_npy).
  std::error_code size_error;
  const auto bytes_in_file = fs::file_size(path_, size_error);
  TLKIT_CHECK(!size_error && header_len + kMagicSize + 2 + len_size <= bytes_in_file, "'", name,
              "': truncated .npy header (it says ", header_len, " bytes)");
  std::string dict(header_len, '\0');
  in_.read(dict.data(), static_cast<std::streamsize>(header_len));
  TLKIT_CHECK(in_.good(), "'", name, "': truncated .npy header");
  TLKIT_CHECK(dict_value(dict, "fortran_order", path_) == "False", "'", name,
              "': Fortran-ordered .npy arrays are not supported; save a C-ordered array "
              "(np.ascontiguousarray)");
  dtype_ = dtype_from_descr(dict_value(dict, "descr", path_), path_);
  shape_ = parse_shape(dict_value(dict, "shape", path_), path_);
  row_bytes_ = static_cast<std::int64_t>(c10::elementSize(dtype_));
  std::int64_t total_bytes = 0;
  bool overflow = false;
  for (size_t i = 1; i < shape_.size(); ++i)
    overflow = overflow || __builtin_mul_overflow(row_bytes_, shape_[i], &row_bytes_);
  overflow = overflow || __builtin_mul_overflow(rows(), row_bytes_, &total_bytes);
  TLKIT_CHECK(!overflow, "'", name, "': the header's shape ", at::IntArrayRef(shape_),
              " is too large to be real (its size overflows); the file is corrupt");
  // The data must be all there: a truncated file is an error now, not garbage later.
  const auto data_start = static_cast<std::int64_t>(in_.tellg());
  const auto file_size = static_cast<std::int64_t>(fs::file_size(path_));
  TLKIT_CHECK(file_size - data_start >= total_bytes, "'", name,
              "' is truncated: the header says shape ", at::IntArrayRef(shape_), " but only ",
              file_size - data_start, " data bytes follow");
}

at::Tensor NpyReader::read_rows(std::int64_t count) {
  const std::int64_t n = std::max<std::int64_t>(0, std::min(count, rows_left()));
  std::vector<std::int64_t> shape = shape_;
  if (shape.empty()) {
    shape = {};  // a 0-d array
  } else {
    shape[0] = n;
  }
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(dtype_));
  in_.read(static_cast<char*>(out.data_ptr()), static_cast<std::streamsize>(n * row_bytes_));
  TLKIT_CHECK(in_.good() || n == 0, "reading '", path_.string(), "' failed");
  next_row_ += n;
  return out;
}

at::Tensor NpyReader::read_all() { return read_rows(rows_left()); }

at::Tensor read_npy(const fs::path& path) { return NpyReader(path).read_all(); }

}  // namespace tlkit
