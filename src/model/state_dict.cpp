#include <tlkit/model/state_dict.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/json.h>

namespace fs = std::filesystem;

namespace tlkit::model {
namespace {

const std::map<std::string, at::ScalarType>& safetensors_dtypes() {
  static const std::map<std::string, at::ScalarType> types = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16}, {"I64", at::kLong},
      {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},   {"U8", at::kByte},       {"BOOL", at::kBool}};
  return types;
}

std::string safetensors_name(at::ScalarType dtype) {
  for (const auto& [name, type] : safetensors_dtypes()) {
    if (type == dtype) return name;
  }
  fail("cannot store a ", c10::toString(dtype), " tensor in a .safetensors file");
}

std::string list_some(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 8; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 8) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

}  // namespace

StateDict read_safetensors(const fs::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK(in.is_open(), "cannot read weights '", file, "': ", std::strerror(errno));
  const auto file_size = static_cast<std::uint64_t>(fs::file_size(path));
  unsigned char size_bytes[8] = {};
  in.read(reinterpret_cast<char*>(size_bytes), 8);
  std::uint64_t header_size = 0;
  for (int k = 7; k >= 0; --k) header_size = (header_size << 8) | size_bytes[k];
  TLKIT_CHECK(in.good() && header_size >= 2 && header_size <= file_size - 8 && header_size < (100u << 20), "'",
              file, "' is not a .safetensors file (bad header size); give a .safetensors or .pth file");
  std::string text(header_size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_size));
  Json header;
  try {
    header = Json::parse(text);
  } catch (const Error& e) {
    fail("'", file, "' is not a .safetensors file: its header is not JSON (", e.what(), ")");
  }
  TLKIT_CHECK(header.is_object(), "'", file, "': the .safetensors header is not a JSON object");
  const std::uint64_t data_start = 8 + header_size;
  StateDict state;
  for (const auto& name : header.keys()) {
    if (name == "__metadata__") continue;
    const Json& entry = header.at(name);
    const auto dtype_it = safetensors_dtypes().find(entry.at("dtype").as_string());
    TLKIT_CHECK(dtype_it != safetensors_dtypes().end(), "'", file, "': tensor '", name, "' has unsupported dtype '",
                entry.at("dtype").as_string(), "'");
    std::vector<std::int64_t> shape;
    for (const auto& d : entry.at("shape").as_array()) shape.push_back(d.as_int());
    const auto begin = static_cast<std::uint64_t>(entry.at("data_offsets").at(0).as_int());
    const auto end = static_cast<std::uint64_t>(entry.at("data_offsets").at(1).as_int());
    at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(dtype_it->second));
    TLKIT_CHECK(end >= begin && end - begin == static_cast<std::uint64_t>(tensor.nbytes()) &&
                    data_start + end <= file_size,
                "'", file, "': tensor '", name, "' has data offsets [", begin, ", ", end, "] that do not fit its shape ",
                tensor.sizes(), " or the file; the file is damaged or truncated");
    in.seekg(static_cast<std::streamoff>(data_start + begin));
    in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(tensor.nbytes()));
    TLKIT_CHECK(in.good() || tensor.nbytes() == 0, "reading tensor '", name, "' from '", file, "' failed");
    state.emplace_back(name, tensor);
  }
  TLKIT_CHECK(!state.empty(), "'", file, "' holds no tensors");
  return state;
}

void write_safetensors(const fs::path& path, const StateDict& state) {
  Json header = Json::object();
  std::int64_t offset = 0;
  std::vector<at::Tensor> data;
  for (const auto& [name, tensor] : state) {
    data.push_back(tensor.detach().to(at::kCPU).contiguous());
    Json entry = Json::object();
    entry["dtype"] = safetensors_name(tensor.scalar_type());
    entry["shape"] = tensor.sizes().vec();
    entry["data_offsets"] = std::vector<std::int64_t>{offset, offset + static_cast<std::int64_t>(data.back().nbytes())};
    header[name] = std::move(entry);
    offset += static_cast<std::int64_t>(data.back().nbytes());
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  AtomicFile out(path);
  char size_bytes[8];
  for (int k = 0; k < 8; ++k) size_bytes[k] = static_cast<char>((text.size() >> (8 * k)) & 0xFF);
  out.stream().write(size_bytes, 8);
  out.stream().write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : data) out.stream().write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  out.commit();
}

StateDict read_state_dict(const fs::path& path) {
  TLKIT_CHECK(fs::exists(path), "weights file '", path.string(), "' does not exist");
  std::ifstream in(path, std::ios::binary);
  char first = 0;
  in.get(first);
  // torch.save files start with a zip ("PK") or pickle (0x80) signature; safetensors with a size.
  if (first == 'P' || static_cast<unsigned char>(first) == 0x80) return read_torch_save(path);
  return read_safetensors(path);
}

void load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict) {
  std::map<std::string, at::Tensor> given(state.begin(), state.end());
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;
  std::vector<std::string> missing, mismatched, unexpected;
  const auto match = [&](const std::string& name, const at::Tensor& target) {
    const auto it = given.find(name);
    if (it == given.end()) {
      const bool optional = name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0;
      if (!optional) missing.push_back(name);
      return;
    }
    if (it->second.sizes() != target.sizes()) {
      std::ostringstream what;
      what << name << " (file " << it->second.sizes() << ", model " << target.sizes() << ")";
      mismatched.push_back(what.str());
    } else {
      copies.emplace_back(target, it->second);
    }
    given.erase(it);
  };
  for (const auto& p : module.named_parameters(true)) match(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) match(b.key(), b.value());
  for (const auto& [name, tensor] : given) unexpected.push_back(name);
  TLKIT_CHECK(missing.empty() && mismatched.empty() && (!strict || unexpected.empty()),
              "the weights do not fit the model:",
              missing.empty() ? "" : " missing " + list_some(missing) + ";",
              mismatched.empty() ? "" : " wrong shape " + list_some(mismatched) + ";",
              (!strict || unexpected.empty()) ? "" : " not in the model " + list_some(unexpected) + ";",
              " check the architecture options (cfg, batch norm, number of classes) against the file");
  at::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(source);
}

}  // namespace tlkit::model
