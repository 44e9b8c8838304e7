#include "pickle_reader.h"

#include <algorithm>
#include <cstring>
#include <map>

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>

#include <tlkit/core/error.h>

namespace tlkit::model::detail {
namespace {

using Kind = PyValue::Kind;

PyRef make(Kind kind) {
  auto value = std::make_shared<PyValue>();
  value->kind = kind;
  return value;
}

PyRef make_int(std::int64_t v, Kind kind = Kind::Int) {
  auto value = make(kind);
  value->integer = v;
  return value;
}

PyRef make_text(std::string text, Kind kind = Kind::String) {
  auto value = make(kind);
  value->text = std::move(text);
  return value;
}

PyRef make_items(Kind kind, std::vector<PyRef> items) {
  auto value = make(kind);
  value->items = std::move(items);
  return value;
}

// torch.<Type>Storage -> its element type.
const std::map<std::string, at::ScalarType>& storage_types() {
  static const std::map<std::string, at::ScalarType> types{
      {"FloatStorage", at::kFloat},   {"DoubleStorage", at::kDouble},
      {"HalfStorage", at::kHalf},     {"BFloat16Storage", at::kBFloat16},
      {"LongStorage", at::kLong},     {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort},   {"CharStorage", at::kChar},
      {"ByteStorage", at::kByte},     {"BoolStorage", at::kBool}};
  return types;
}

const char* const kOrderedDict = "collections OrderedDict";
const char* const kRebuildTensor = "torch._utils _rebuild_tensor_v2";
const char* const kRebuildParameter = "torch._utils _rebuild_parameter";
const char* const kRebuildParameterState = "torch._utils _rebuild_parameter_with_state";

std::vector<std::int64_t> int_tuple(const PyRef& value, const std::string& what) {
  TLKIT_CHECK(value->kind == Kind::Tuple, what, ": a tensor's size or stride is not a tuple");
  std::vector<std::int64_t> out;
  for (const auto& item : value->items) {
    TLKIT_CHECK(item->kind == Kind::Int, what, ": a tensor's size or stride is not an integer");
    out.push_back(item->integer);
  }
  return out;
}

}  // namespace

PickleReader::PickleReader(const char* data, size_t size, std::string what, StorageLoader storages)
    : data_(data), size_(size), what_(std::move(what)), storages_(std::move(storages)) {}

void PickleReader::refuse(const std::string& why) const {
  fail("cannot read weights '", what_, "': ", why, " (at byte ", pos_,
       "); tlkit reads state_dict files written by torch.save(model.state_dict())");
}

std::uint8_t PickleReader::byte() {
  if (pos_ >= size_) refuse("the pickle ends early");
  return static_cast<std::uint8_t>(data_[pos_++]);
}

std::string PickleReader::bytes(size_t n) {
  if (n > size_ - pos_) refuse("the pickle ends early");
  std::string out(data_ + pos_, n);
  pos_ += n;
  return out;
}

std::int64_t PickleReader::little_endian(size_t n) {
  std::uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(byte()) << (8 * i);
  return static_cast<std::int64_t>(v);
}

std::string PickleReader::line() {
  std::string out;
  for (char c = static_cast<char>(byte()); c != '\n'; c = static_cast<char>(byte())) out += c;
  return out;
}

PyRef PickleReader::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
    refuse("the pickle pops an empty stack");
  auto value = std::move(stack_.back());
  stack_.pop_back();
  return value;
}

std::vector<PyRef> PickleReader::pop_to_mark() {
  if (marks_.empty()) refuse("the pickle has no MARK to pop to");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<PyRef> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
  stack_.resize(mark);
  return items;
}

void PickleReader::memo_put(size_t index) {
  if (stack_.empty()) refuse("the pickle memoizes an empty stack");
  if (index > 1'000'000) refuse("a memo index is implausibly large");
  if (memo_.size() <= index) memo_.resize(index + 1);
  memo_[index] = stack_.back();
}

PyRef PickleReader::memo_get(size_t index) {
  if (index >= memo_.size() || !memo_[index]) refuse("the pickle reads an unset memo entry");
  return memo_[index];
}

PyRef PickleReader::global(const std::string& module, const std::string& name) {
  const std::string full = module + " " + name;
  const bool storage = module == "torch" && storage_types().count(name) > 0;
  if (!(storage || full == kOrderedDict || full == kRebuildTensor || full == kRebuildParameter ||
        full == kRebuildParameterState)) {
    refuse("it refers to '" + module + "." + name +
           "', which is not part of a plain state_dict (tlkit runs no code from weight files)");
  }
  return make_text(full, Kind::Global);
}

PyRef PickleReader::reduce(const PyRef& callable, const PyRef& args) {
  if (callable->kind != Kind::Global || args->kind != Kind::Tuple)
    refuse("REDUCE on something other than an allowed global");
  const auto& a = args->items;
  if (callable->text == kOrderedDict) return make(Kind::Dict);
  if (callable->text == kRebuildTensor) {
    if (a.size() < 6 || a[0]->kind != Kind::Tensor || a[1]->kind != Kind::Int)
      refuse("_rebuild_tensor_v2 with unexpected arguments");
    const auto size = int_tuple(a[2], what_);
    const auto stride = int_tuple(a[3], what_);
    if (size.size() != stride.size()) refuse("a tensor's size and stride differ in length");
    std::int64_t last = a[1]->integer;
    for (size_t i = 0; i < size.size(); ++i) last += size[i] > 0 ? (size[i] - 1) * stride[i] : 0;
    const bool empty = std::find(size.begin(), size.end(), 0) != size.end();
    if (a[1]->integer < 0 || (!empty && last >= a[0]->tensor.numel()))
      refuse("a tensor reaches past its storage");
    auto value = make(Kind::Tensor);
    value->tensor = a[0]->tensor.as_strided(size, stride, a[1]->integer);
    return value;
  }
  if (callable->text == kRebuildParameter || callable->text == kRebuildParameterState) {
    if (a.empty() || a[0]->kind != Kind::Tensor) refuse("_rebuild_parameter without a tensor");
    return a[0];
  }
  refuse("'" + callable->text + "' called with arguments");  // a storage type
}

PyRef PickleReader::persistent(const PyRef& pid) {
  const auto& p = pid->items;
  if (pid->kind != Kind::Tuple || p.size() < 5 || p[0]->kind != Kind::String ||
      p[0]->text != "storage" || p[1]->kind != Kind::Global || p[2]->kind != Kind::String ||
      p[4]->kind != Kind::Int || p[4]->integer < 0)
    refuse("a persistent id that is not a storage");
  if (p.size() > 5 && p[5]->kind != Kind::None) refuse("a storage view (legacy format)");
  const auto& type = p[1]->text;
  const auto it = storage_types().find(type.substr(type.find(' ') + 1));
  if (type.rfind("torch ", 0) != 0 || it == storage_types().end())
    refuse("a storage of unknown type '" + type + "'");
  auto value = make(Kind::Tensor);
  value->tensor = storages_(p[2]->text, it->second, p[4]->integer);
  return value;
}

PyRef PickleReader::load() {
  stack_.clear();
  marks_.clear();
  memo_.clear();
  while (step(byte())) {
  }
  if (stack_.size() != 1) refuse("the pickle does not end with one object");
  return stack_.back();
}

bool PickleReader::step(std::uint8_t op) {
  switch (op) {
    case 0x80: byte(); break;                 // PROTO
    case 0x95: little_endian(8); break;       // FRAME
    case '.': return false;                   // STOP
    case '(': marks_.push_back(stack_.size()); break;  // MARK
    case '}': push(make(Kind::Dict)); break;  // EMPTY_DICT
    case 'd': push(make_items(Kind::Dict, pop_to_mark())); break;  // DICT
    case ']': push(make(Kind::List)); break;  // EMPTY_LIST
    case 'l': push(make_items(Kind::List, pop_to_mark())); break;  // LIST
    case ')': push(make(Kind::Tuple)); break;  // EMPTY_TUPLE
    case 't': push(make_items(Kind::Tuple, pop_to_mark())); break;  // TUPLE
    case 0x85: case 0x86: case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
      std::vector<PyRef> items(op - 0x84);
      for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
      push(make_items(Kind::Tuple, std::move(items)));
      break;
    }
    case 'X': push(make_text(bytes(static_cast<size_t>(little_endian(4))))); break;
    case 0x8c: push(make_text(bytes(byte()))); break;  // SHORT_BINUNICODE
    case 0x8d: push(make_text(bytes(static_cast<size_t>(little_endian(8))))); break;
    case 'q': memo_put(byte()); break;                                  // BINPUT
    case 'r': memo_put(static_cast<size_t>(little_endian(4))); break;  // LONG_BINPUT
    case 0x94: memo_put(memo_.size()); break;                           // MEMOIZE
    case 'h': push(memo_get(byte())); break;                            // BINGET
    case 'j': push(memo_get(static_cast<size_t>(little_endian(4)))); break;  // LONG_BINGET
    case 'c': {  // GLOBAL
      const auto module = line();
      push(global(module, line()));
      break;
    }
    case 0x93: {  // STACK_GLOBAL
      const auto name = pop(), module = pop();
      if (name->kind != Kind::String || module->kind != Kind::String)
        refuse("STACK_GLOBAL without names");
      push(global(module->text, name->text));
      break;
    }
    case 'Q': push(persistent(pop())); break;  // BINPERSID
    case 'R': {                                 // REDUCE
      const auto args = pop(), callable = pop();
      push(reduce(callable, args));
      break;
    }
    case 's': case 'u': {  // SETITEM, SETITEMS
      auto items = op == 's' ? std::vector<PyRef>{} : pop_to_mark();
      if (op == 's') {
        const auto value = pop(), key = pop();
        items = {key, value};
      }
      if (stack_.empty() || stack_.back()->kind != Kind::Dict) refuse("SETITEM on a non-dict");
      auto& dict = stack_.back()->items;
      dict.insert(dict.end(), items.begin(), items.end());
      break;
    }
    case 'a': case 'e': {  // APPEND, APPENDS
      auto items = op == 'a' ? std::vector<PyRef>{pop()} : pop_to_mark();
      if (stack_.empty() || stack_.back()->kind != Kind::List) refuse("APPEND on a non-list");
      auto& list = stack_.back()->items;
      list.insert(list.end(), items.begin(), items.end());
      break;
    }
    case 'b': {  // BUILD: an OrderedDict's _metadata, a parameter's state: not needed
      pop();
      if (stack_.empty() || (stack_.back()->kind != Kind::Dict &&
                             stack_.back()->kind != Kind::Tensor))
        refuse("BUILD on an object other than a dict or tensor");
      break;
    }
    case 'J': push(make_int(static_cast<std::int32_t>(little_endian(4)))); break;  // BININT
    case 'K': push(make_int(byte())); break;                                      // BININT1
    case 'M': push(make_int(little_endian(2))); break;                            // BININT2
    case 0x8a: {  // LONG1
      const size_t n = byte();
      if (n > 8) {
        push(make_text(bytes(n), Kind::BigInt));
        break;
      }
      std::int64_t v = n ? little_endian(n) : 0;
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v -= std::int64_t{1} << (8 * n);  // sign
      push(make_int(v));
      break;
    }
    case 0x88: case 0x89: push(make_int(op == 0x88, Kind::Bool)); break;  // NEWTRUE, NEWFALSE
    case 'N': push(make(Kind::None)); break;
    case 'G': {  // BINFLOAT: big-endian double
      std::uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();
      auto value = make(Kind::Float);
      std::memcpy(&value->number, &bits, sizeof bits);
      push(value);
      break;
    }
    default:
      refuse(fmt::format("pickle opcode 0x{:02x} is not used by state_dict files", op));
  }
  return true;
}

std::vector<std::pair<std::string, at::Tensor>> tensor_dict(const PyRef& value,
                                                            const std::string& what) {
  TLKIT_CHECK(value->kind == Kind::Dict, "cannot read weights '", what,
              "': the file holds no dict of tensors (save model.state_dict(), not the model)");
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i + 1 < value->items.size(); i += 2) {
    const auto& key = value->items[i];
    const auto& tensor = value->items[i + 1];
    TLKIT_CHECK(key->kind == Kind::String, "cannot read weights '", what, "': a key is not a name");
    TLKIT_CHECK(tensor->kind == Kind::Tensor, "cannot read weights '", what, "': entry '",
                key->text, "' is not a tensor (save model.state_dict(), not a checkpoint dict)");
    out.emplace_back(key->text, tensor->tensor);
  }
  return out;
}

}  // namespace tlkit::model::detail
