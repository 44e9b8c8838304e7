#pragma once
// A restricted unpickler for the pickles torch.save writes for a state_dict: an OrderedDict of
// tensors (with its `_metadata`), storages as persistent ids. It knows the opcodes of pickle
// protocols 2-4 that such files use and only a fixed list of globals (collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.<Type>Storage); anything else is
// refused by name, so a weight file cannot run code.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace tlkit::model::detail {

struct PyValue;
using PyRef = std::shared_ptr<PyValue>;

struct PyValue {
  enum class Kind { None, Bool, Int, BigInt, Float, String, Tuple, List, Dict, Global, Tensor };
  Kind kind = Kind::None;
  std::int64_t integer = 0;  // Bool, Int
  double number = 0;         // Float
  std::string text;          // String; Global "module name"; BigInt's little-endian bytes
  std::vector<PyRef> items;  // Tuple, List; Dict as key, value, key, value...
  at::Tensor tensor;         // Tensor (also a storage: a 1-D tensor of its dtype)
};

// Loads the storage of a persistent id ('storage', <Type>Storage, key, location, numel[, ...]):
// a 1-D tensor of `numel` elements of `dtype`.
using StorageLoader =
    std::function<at::Tensor(const std::string& key, at::ScalarType dtype, std::int64_t numel)>;

class PickleReader {
 public:
  // Reads pickles from data[0, size); `what` names the file in errors.
  PickleReader(const char* data, size_t size, std::string what, StorageLoader storages);
  // The next pickle's object (the reader stops after its STOP opcode).
  PyRef load();
  size_t position() const { return pos_; }

 private:
  std::uint8_t byte();
  std::string bytes(size_t n);
  std::int64_t little_endian(size_t n);
  std::string line();
  void push(PyRef value) { stack_.push_back(std::move(value)); }
  PyRef pop();
  std::vector<PyRef> pop_to_mark();
  void memo_put(size_t index);
  PyRef memo_get(size_t index);
  PyRef global(const std::string& module, const std::string& name);
  PyRef reduce(const PyRef& callable, const PyRef& args);
  PyRef persistent(const PyRef& pid);
  bool step(std::uint8_t op);  // false at STOP
  [[noreturn]] void refuse(const std::string& why) const;

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string what_;
  StorageLoader storages_;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::vector<PyRef> memo_;
};

// The entries of a Dict value ("name" -> tensor), in order; throws naming the first non-tensor.
std::vector<std::pair<std::string, at::Tensor>> tensor_dict(const PyRef& value,
                                                            const std::string& what);

}  // namespace tlkit::model::detail
