#include <tlkit/model/weights_file.h>

#include <cstring>
#include <fstream>
#include <map>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <tlkit/core/error.h>
#include <tlkit/core/json.h>

#include "pickle_reader.h"

namespace fs = std::filesystem;

namespace tlkit::model {
namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK(in, "cannot read weights '", path.string(), "': cannot open the file");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string head_bytes(const fs::path& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string out(n, '\0');
  in.read(out.data(), static_cast<std::streamsize>(n));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

// The legacy format's first pickle: protocol 2, LONG1 of 10 bytes, 0x1950a86a20f9469cfc6c.
const std::string kLegacyStart("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14);

at::Tensor tensor_from_bytes(const char* data, size_t nbytes, at::ScalarType dtype,
                             std::int64_t numel, const std::string& what) {
  TLKIT_CHECK(static_cast<size_t>(numel) * c10::elementSize(dtype) == nbytes,
              "cannot read weights '", what, "': a storage holds ", nbytes, " bytes, not ", numel,
              " elements of ", c10::toString(dtype));
  auto tensor = at::empty({numel}, at::TensorOptions().dtype(dtype));
  if (nbytes) std::memcpy(tensor.data_ptr(), data, nbytes);
  return tensor;
}

StateDict read_zip(const fs::path& path) {
  const std::string what = path.string();
  try {
    caffe2::serialize::PyTorchStreamReader reader(what);
    TLKIT_CHECK(reader.hasRecord("data.pkl"), "cannot read weights '", what,
                "': a zip archive without data.pkl (a TorchScript model? give it to the other "
                "commands with --model)");
    const auto [pickle, size] = reader.getRecord("data.pkl");
    detail::StorageLoader load = [&](const std::string& key, at::ScalarType dtype,
                                     std::int64_t numel) {
      const auto name = "data/" + key;
      TLKIT_CHECK(reader.hasRecord(name), "cannot read weights '", what, "': storage '", key,
                  "' is missing");
      const auto [data, nbytes] = reader.getRecord(name);
      return tensor_from_bytes(static_cast<const char*>(data.get()), nbytes, dtype, numel, what);
    };
    detail::PickleReader unpickler(static_cast<const char*>(pickle.get()), size, what, load);
    return detail::tensor_dict(unpickler.load(), what);
  } catch (const c10::Error& e) {
    fail("cannot read weights '", what, "': a damaged zip archive (",
         e.what_without_backtrace(), ")");
  }
}

// Legacy torch.save: magic, protocol version, system info, the object, the sorted storage keys,
// then per key an int64 element count and the raw elements.
StateDict read_legacy(const fs::path& path) {
  const std::string what = path.string();
  const std::string file = read_file(path);
  std::map<std::string, at::Tensor> storages;
  detail::StorageLoader defer = [&](const std::string& key, at::ScalarType dtype,
                                    std::int64_t numel) {
    auto& storage = storages[key];
    if (!storage.defined()) storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
    return storage;
  };
  detail::PickleReader reader(file.data(), file.size(), what, defer);
  reader.load();  // magic number (checked by the caller)
  const auto protocol = reader.load();
  TLKIT_CHECK(protocol->kind == detail::PyValue::Kind::Int && protocol->integer == 1001,
              "cannot read weights '", what, "': legacy torch.save protocol ", protocol->integer,
              " is not 1001");
  reader.load();  // system info: little-endian hosts only, like every machine torch runs on
  const auto dict = detail::tensor_dict(reader.load(), what);
  const auto keys = reader.load();
  TLKIT_CHECK(keys->kind == detail::PyValue::Kind::List, "cannot read weights '", what,
              "': the storage key list is missing");
  size_t pos = reader.position();
  for (const auto& key : keys->items) {
    const auto it = storages.find(key->text);
    TLKIT_CHECK(it != storages.end() && file.size() - pos >= 8, "cannot read weights '", what,
                "': storage '", key->text, "' is missing or the file is cut short");
    std::int64_t numel = 0;
    std::memcpy(&numel, file.data() + pos, 8);
    pos += 8;
    const auto nbytes = it->second.nbytes();
    TLKIT_CHECK(numel == it->second.numel() && file.size() - pos >= nbytes, "cannot read weights '",
                what, "': storage '", key->text, "' has the wrong size or the file is cut short");
    std::memcpy(it->second.data_ptr(), file.data() + pos, nbytes);
    pos += nbytes;
  }
  return dict;
}

const std::map<std::string, at::ScalarType>& safetensors_types() {
  static const std::map<std::string, at::ScalarType> types{
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16},
      {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},    {"BOOL", at::kBool}};
  return types;
}

StateDict read_safetensors(const fs::path& path) {
  const std::string what = path.string();
  const std::string file = read_file(path);
  std::uint64_t header_size = 0;
  TLKIT_CHECK(file.size() >= 8, "cannot read weights '", what, "': too short for safetensors");
  std::memcpy(&header_size, file.data(), 8);
  TLKIT_CHECK(header_size <= file.size() - 8, "cannot read weights '", what,
              "': the safetensors header length ", header_size, " exceeds the file");
  const auto header = Json::parse(file.substr(8, header_size));
  const char* data = file.data() + 8 + header_size;
  const size_t data_size = file.size() - 8 - header_size;
  StateDict out;
  for (const auto& name : header.keys()) {
    if (name == "__metadata__") continue;
    const auto& entry = header.at(name);
    const auto type = safetensors_types().find(entry.at("dtype").as_string());
    TLKIT_CHECK(type != safetensors_types().end(), "cannot read weights '", what, "': tensor '",
                name, "' has dtype ", entry.at("dtype").as_string(), ", which tlkit does not read");
    std::vector<std::int64_t> shape;
    std::int64_t numel = 1;
    for (const auto& d : entry.at("shape").as_array()) {
      shape.push_back(d.as_int());
      TLKIT_CHECK(shape.back() >= 0, "cannot read weights '", what, "': a negative size");
      numel *= shape.back();
    }
    const auto begin = entry.at("data_offsets").at(0).as_int();
    const auto end = entry.at("data_offsets").at(1).as_int();
    TLKIT_CHECK(0 <= begin && begin <= end && static_cast<size_t>(end) <= data_size,
                "cannot read weights '", what, "': tensor '", name, "' lies outside the file");
    out.emplace_back(name, tensor_from_bytes(data + begin, static_cast<size_t>(end - begin),
                                             type->second, numel, what)
                               .reshape(shape));
  }
  return out;
}

}  // namespace

std::string weights_file_format(const fs::path& path) {
  const auto start = head_bytes(path, 16);
  if (start.rfind("PK\x03\x04", 0) == 0) return "zip";
  if (start.rfind(kLegacyStart, 0) == 0) return "legacy";
  if (start.size() >= 9 && start[8] == '{') return "safetensors";
  return "";
}

StateDict read_weights_file(const fs::path& path) {
  std::error_code error;
  TLKIT_CHECK(fs::is_regular_file(path, error), "cannot read weights '", path.string(),
              "': no such file");
  const auto format = weights_file_format(path);
  if (format == "zip") return read_zip(path);
  if (format == "legacy") return read_legacy(path);
  if (format == "safetensors") return read_safetensors(path);
  fail("cannot read weights '", path.string(),
       "': not a torch.save state_dict (zip or legacy) nor a .safetensors file");
}

}  // namespace tlkit::model
