// read_torch_save: torch.save files (zip and legacy formats) read by a small pickle machine.
// Pickle opcodes: https://github.com/python/cpython/blob/main/Lib/pickletools.py
// torch.save layouts: torch/serialization.py (_save for zip, _legacy_save for the old format).

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <tlkit/core/error.h>
#include <tlkit/model/state_dict.h>

namespace fs = std::filesystem;

namespace tlkit::model {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Tensor, Global, Object, Mark } kind = None;
  std::int64_t i = 0;
  double f = 0;
  std::string s;                // String text, Global "module.name"
  std::vector<ValuePtr> items;  // Tuple/List items; Dict keys and values interleaved
  at::Tensor tensor;

  static ValuePtr make(Kind kind) {
    auto v = std::make_shared<Value>();
    v->kind = kind;
    return v;
  }
};

at::ScalarType storage_dtype(const std::string& global) {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat}, {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort}, {"torch.CharStorage", at::kChar}, {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  const auto it = types.find(global);
  TLKIT_CHECK(it != types.end(), "unsupported storage type '", global, "' in the checkpoint");
  return it->second;
}

// Storages by key; for the zip format their bytes come from the archive as they are referenced,
// for the legacy format they are filled after the pickle.
class StorageTable {
 public:
  explicit StorageTable(caffe2::serialize::PyTorchStreamReader* zip) : zip_(zip) {}

  at::Tensor get(const std::string& key, at::ScalarType dtype, std::int64_t numel) {
    auto it = storages_.find(key);
    if (it != storages_.end()) return it->second;
    at::Tensor storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
    if (zip_) {
      const std::string record = "data/" + key;
      TLKIT_CHECK(zip_->hasRecord(record), "the checkpoint lacks its storage '", record, "'; the file is damaged");
      auto [data, size] = zip_->getRecord(record);
      TLKIT_CHECK(size == static_cast<size_t>(storage.nbytes()), "storage '", key, "' has ", size,
                  " bytes, expected ", storage.nbytes(), "; the file is damaged");
      std::memcpy(storage.data_ptr(), data.get(), size);
    }
    storages_.emplace(key, storage);
    return storage;
  }

  std::map<std::string, at::Tensor>& all() { return storages_; }

 private:
  caffe2::serialize::PyTorchStreamReader* zip_;
  std::map<std::string, at::Tensor> storages_;
};

class Unpickler {
 public:
  Unpickler(std::istream& in, StorageTable& storages, std::string file)
      : in_(in), storages_(storages), file_(std::move(file)) {}

  ValuePtr load();

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail("cannot read '", file_, "' as a torch.save file: ", what,
         "; save a plain state dict with torch.save(model.state_dict(), path)");
  }
  std::string read(size_t n) {
    std::string bytes(n, '\0');
    in_.read(bytes.data(), static_cast<std::streamsize>(n));
    if (static_cast<size_t>(in_.gcount()) != n) error("unexpected end of the pickle");
    return bytes;
  }
  std::uint64_t read_le(size_t n) {
    const std::string bytes = read(n);
    std::uint64_t value = 0;
    for (size_t k = n; k-- > 0;) value = (value << 8) | static_cast<unsigned char>(bytes[k]);
    return value;
  }
  std::string read_line() {
    std::string line;
    if (!std::getline(in_, line)) error("unexpected end of the pickle");
    return line;
  }
  ValuePtr pop() {
    if (stack_.empty()) error("stack underflow");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_to_mark() {
    auto it = stack_.end();
    while (it != stack_.begin() && (*(it - 1))->kind != Value::Mark) --it;
    if (it == stack_.begin()) error("MARK missing");
    std::vector<ValuePtr> items(it, stack_.end());
    stack_.erase(it - 1, stack_.end());
    return items;
  }
  ValuePtr scalar(Value::Kind kind, std::int64_t i = 0) {
    auto v = Value::make(kind);
    v->i = i;
    return v;
  }
  ValuePtr text(std::string s) {
    auto v = Value::make(Value::String);
    v->s = std::move(s);
    return v;
  }
  ValuePtr tuple(std::vector<ValuePtr> items) {
    auto v = Value::make(Value::Tuple);
    v->items = std::move(items);
    return v;
  }
  void set_items(const ValuePtr& dict, const std::vector<ValuePtr>& pairs) {
    if (dict->kind != Value::Dict) return;  // e.g. items of an unsupported object: ignored
    dict->items.insert(dict->items.end(), pairs.begin(), pairs.end());
  }
  ValuePtr memo_get(std::uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) error("memo key " + std::to_string(key) + " missing");
    return it->second;
  }
  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args);
  ValuePtr persistent_load(const ValuePtr& pid);
  bool step(unsigned char op);
  bool push_scalar(unsigned char op);

  std::istream& in_;
  StorageTable& storages_;
  std::string file_;
  std::vector<ValuePtr> stack_;
  std::map<std::uint64_t, ValuePtr> memo_;
};

std::vector<std::int64_t> int_list(const ValuePtr& v) {
  std::vector<std::int64_t> out;
  for (const auto& item : v->items) out.push_back(item->i);
  return out;
}

ValuePtr Unpickler::reduce(const ValuePtr& callable, const ValuePtr& args) {
  const std::string& name = callable->s;
  if (name == "collections.OrderedDict") return Value::make(Value::Dict);
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
    const auto& a = args->items;
    if (a.size() < 4 || a[0]->kind != Value::Tensor) error("unexpected arguments to " + name);
    auto v = Value::make(Value::Tensor);
    v->tensor = a[0]->tensor.as_strided(int_list(a[2]), int_list(a[3]), a[1]->i);
    return v;
  }
  if (name == "torch._utils._rebuild_parameter") {
    if (args->items.empty() || args->items[0]->kind != Value::Tensor) error("unexpected arguments to " + name);
    return args->items[0];
  }
  auto v = Value::make(Value::Object);  // anything else: opaque, fine unless a tensor needs it
  v->s = name;
  return v;
}

ValuePtr Unpickler::persistent_load(const ValuePtr& pid) {
  const auto& p = pid->items;
  if (pid->kind != Value::Tuple || p.size() < 5 || p[0]->s != "storage" || p[1]->kind != Value::Global) {
    error("unsupported persistent id");
  }
  const at::ScalarType dtype = storage_dtype(p[1]->s);
  at::Tensor storage = storages_.get(p[2]->s, dtype, p[4]->i);
  if (p.size() > 5 && p[5]->kind == Value::Tuple && p[5]->items.size() == 3) {  // legacy storage view
    const auto& view = p[5]->items;
    storage = storages_.get(p[2]->s, dtype, p[4]->i).narrow(0, view[1]->i, view[2]->i);
  }
  auto v = Value::make(Value::Tensor);
  v->tensor = storage;
  return v;
}

// Pushes a string, number, bool or None; false when `op` is none of those.
bool Unpickler::push_scalar(unsigned char op) {
  switch (op) {
    case 'X': case 'T': case 'B': stack_.push_back(text(read(read_le(4)))); break;
    case 0x8c: case 'U': case 'C': stack_.push_back(text(read(read_le(1)))); break;
    case 0x8d: case 0x8e: stack_.push_back(text(read(read_le(8)))); break;
    case 'J': stack_.push_back(scalar(Value::Int, static_cast<std::int32_t>(read_le(4)))); break;
    case 'K': stack_.push_back(scalar(Value::Int, static_cast<std::int64_t>(read_le(1)))); break;
    case 'M': stack_.push_back(scalar(Value::Int, static_cast<std::int64_t>(read_le(2)))); break;
    case 0x8a: {                                            // LONG1
      const size_t n = read_le(1);
      if (n > 8) { read(n); stack_.push_back(scalar(Value::Int, 0)); break; }  // huge ints: magic numbers
      std::uint64_t raw = n ? read_le(n) : 0;
      if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~std::uint64_t{0} << (8 * n);  // sign-extend
      stack_.push_back(scalar(Value::Int, static_cast<std::int64_t>(raw)));
      break;
    }
    case 'G': {                                             // BINFLOAT, big-endian
      const std::string bytes = read(8);
      std::uint64_t bits = 0;
      for (const char b : bytes) bits = (bits << 8) | static_cast<unsigned char>(b);
      auto v = Value::make(Value::Float);
      std::memcpy(&v->f, &bits, 8);
      stack_.push_back(v);
      break;
    }
    case 0x88: stack_.push_back(scalar(Value::Bool, 1)); break;
    case 0x89: stack_.push_back(scalar(Value::Bool, 0)); break;
    case 'N': stack_.push_back(Value::make(Value::None)); break;
    default: return false;
  }
  return true;
}

// Executes one opcode; returns false at STOP.
bool Unpickler::step(unsigned char op) {
  switch (op) {
    case 0x80: read(1); break;                             // PROTO
    case 0x95: read(8); break;                             // FRAME
    case '}': stack_.push_back(Value::make(Value::Dict)); break;
    case ']': stack_.push_back(Value::make(Value::List)); break;
    case ')': stack_.push_back(tuple({})); break;
    case '(': stack_.push_back(Value::make(Value::Mark)); break;
    case 't': stack_.push_back(tuple(pop_to_mark())); break;
    case 0x85: { auto a = pop(); stack_.push_back(tuple({a})); break; }
    case 0x86: { auto b = pop(), a = pop(); stack_.push_back(tuple({a, b})); break; }
    case 0x87: { auto c = pop(), b = pop(), a = pop(); stack_.push_back(tuple({a, b, c})); break; }
    case 'l': { auto v = Value::make(Value::List); v->items = pop_to_mark(); stack_.push_back(v); break; }
    case 'd': { auto v = Value::make(Value::Dict); v->items = pop_to_mark(); stack_.push_back(v); break; }
    case 'a': { auto item = pop(); stack_.back()->items.push_back(item); break; }
    case 'e': { auto items = pop_to_mark(); auto& l = stack_.back()->items; l.insert(l.end(), items.begin(), items.end()); break; }
    case 's': { auto value = pop(), key = pop(); set_items(stack_.back(), {key, value}); break; }
    case 'u': { auto items = pop_to_mark(); set_items(stack_.back(), items); break; }
    case 'q': memo_[read_le(1)] = stack_.back(); break;    // BINPUT
    case 'r': memo_[read_le(4)] = stack_.back(); break;    // LONG_BINPUT
    case 0x94: memo_[memo_.size()] = stack_.back(); break;  // MEMOIZE
    case 'h': stack_.push_back(memo_get(read_le(1))); break;
    case 'j': stack_.push_back(memo_get(read_le(4))); break;
    case 'c': {                                             // GLOBAL
      auto v = Value::make(Value::Global);
      v->s = read_line();
      v->s += "." + read_line();
      stack_.push_back(v);
      break;
    }
    case 0x93: {                                            // STACK_GLOBAL
      auto name = pop(), module = pop();
      auto v = Value::make(Value::Global);
      v->s = module->s + "." + name->s;
      stack_.push_back(v);
      break;
    }
    case 'Q': { auto pid = pop(); stack_.push_back(persistent_load(pid)); break; }
    case 'R': { auto args = pop(), callable = pop(); stack_.push_back(reduce(callable, args)); break; }
    case 0x81: { auto args = pop(), cls = pop(); stack_.push_back(reduce(cls, args)); break; }  // NEWOBJ
    case 'b': pop(); break;                                 // BUILD: state (e.g. _metadata) ignored
    case '0': pop(); break;
    case '1': pop_to_mark(); break;
    case '2': stack_.push_back(stack_.back()); break;
    case '.': return false;
    default: {
      if (push_scalar(op)) break;
      std::ostringstream hex;
      hex << "0x" << std::hex << static_cast<int>(op);
      error("unsupported pickle opcode " + hex.str());
    }
  }
  return true;
}

ValuePtr Unpickler::load() {
  stack_.clear();
  memo_.clear();
  while (true) {
    const int op = in_.get();
    if (op == EOF) error("unexpected end of the pickle");
    if (!step(static_cast<unsigned char>(op))) break;
  }
  if (stack_.size() != 1) error("malformed pickle");
  return stack_.back();
}

// The state dict inside what was pickled: a dict of tensors, or a checkpoint holding one.
StateDict to_state_dict(const ValuePtr& root, const std::string& file) {
  TLKIT_CHECK(root->kind == Value::Dict, "'", file, "' does not hold a state dict (a dict of tensors); "
              "save one with torch.save(model.state_dict(), path)");
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    const auto& key = root->items[k]->s;
    if ((key == "state_dict" || key == "model") && root->items[k + 1]->kind == Value::Dict) {
      return to_state_dict(root->items[k + 1], file);
    }
  }
  StateDict state;
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    if (root->items[k]->kind == Value::String && root->items[k + 1]->kind == Value::Tensor) {
      state.emplace_back(root->items[k]->s, root->items[k + 1]->tensor);
    }
  }
  TLKIT_CHECK(!state.empty(), "'", file, "' holds a dict without tensors; save model.state_dict()");
  return state;
}

// Legacy format: magic number, protocol, sys info, the object, the storage keys, then each
// storage as a little-endian int64 element count followed by its bytes.
StateDict read_legacy(std::istream& in, const std::string& file) {
  StorageTable storages(nullptr);
  Unpickler unpickler(in, storages, file);
  for (int header = 0; header < 3; ++header) unpickler.load();
  const auto root = unpickler.load();
  const auto keys = unpickler.load();
  for (const auto& key : keys->items) {
    auto it = storages.all().find(key->s);
    TLKIT_CHECK(it != storages.all().end(), "'", file, "': storage '", key->s, "' is never used; the file is damaged");
    std::int64_t count = 0;
    in.read(reinterpret_cast<char*>(&count), 8);
    at::Tensor& storage = it->second;
    TLKIT_CHECK(in.good() && count == storage.numel(), "'", file, "': storage '", key->s, "' has ", count,
                " elements, expected ", storage.numel(), "; the file is damaged or truncated");
    in.read(static_cast<char*>(storage.data_ptr()), static_cast<std::streamsize>(storage.nbytes()));
    TLKIT_CHECK(in.good(), "'", file, "' is truncated in storage '", key->s, "'");
  }
  return to_state_dict(root, file);
}

}  // namespace

StateDict read_torch_save(const fs::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK(in.is_open(), "cannot read weights '", file, "': ", std::strerror(errno));
  char magic[4] = {};
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0) {
    in.close();
    try {
      caffe2::serialize::PyTorchStreamReader zip(file);
      TLKIT_CHECK(zip.hasRecord("data.pkl"), "'", file, "' is a zip file but not a torch.save archive (no data.pkl)");
      auto [data, size] = zip.getRecord("data.pkl");
      std::istringstream pickle(std::string(static_cast<const char*>(data.get()), size));
      StorageTable storages(&zip);
      return to_state_dict(Unpickler(pickle, storages, file).load(), file);
    } catch (const c10::Error& e) {
      fail("cannot read weights '", file, "': ", e.what_without_backtrace());
    }
  }
  TLKIT_CHECK(in.gcount() >= 2 && static_cast<unsigned char>(magic[0]) == 0x80, "'", file,
              "' is not a torch.save file (neither zip nor pickle); give a .pth state dict or a .safetensors file");
  in.seekg(0);
  return read_legacy(in, file);
}

}  // namespace tlkit::model
