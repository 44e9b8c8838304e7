#pragma once
// A small JSON value with a writer and a reader (RFC 8259), enough for tlkit's manifests,
// summaries and run records. Objects keep their keys in insertion order, so files
// written by tlkit read the same every time. Integers are kept exactly (int64) apart from doubles.

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace tlkit {

class Json {
 public:
  enum class Type { Null, Bool, Integer, Number, String, Array, Object };

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool value) : type_(Type::Bool), bool_(value) {}
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Json(T value) : type_(Type::Integer), int_(static_cast<std::int64_t>(value)) {}
  Json(double value) : type_(Type::Number), number_(value) {}
  Json(float value) : Json(static_cast<double>(value)) {}
  Json(const char* value) : type_(Type::String), string_(value) {}
  Json(std::string value) : type_(Type::String), string_(std::move(value)) {}
  template <typename T>
  Json(const std::vector<T>& values) : type_(Type::Array) {
    for (const auto& value : values) array_.emplace_back(value);
  }

  static Json array() {
    Json j;
    j.type_ = Type::Array;
    return j;
  }
  static Json object() {
    Json j;
    j.type_ = Type::Object;
    return j;
  }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_number() const { return type_ == Type::Integer || type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Typed access; each throws tlkit::Error naming the expected and the actual type.
  bool as_bool() const;
  std::int64_t as_int() const;  // an integer, or a double with an integral value
  double as_double() const;
  const std::string& as_string() const;
  const std::vector<Json>& as_array() const;
  std::vector<std::string> as_string_list() const;
  std::vector<double> as_double_list() const;

  // Objects. operator[] inserts a null member when the key is new (turning null into an object).
  Json& operator[](const std::string& key);
  const Json& at(const std::string& key) const;  // throws tlkit::Error when missing
  bool contains(const std::string& key) const;
  const std::vector<std::string>& keys() const { return keys_; }

  // Arrays (and the member count of objects).
  void push_back(Json value);
  const Json& at(size_t index) const;
  size_t size() const;

  // Compact when indent < 0, else pretty-printed with `indent` spaces.
  std::string dump(int indent = -1) const;
  // Throws tlkit::Error with the offset of the first problem.
  static Json parse(const std::string& text);

 private:
  void dump_to(std::string& out, int indent, int depth) const;
  const char* type_name() const;

  Type type_ = Type::Null;
  bool bool_ = false;
  std::int64_t int_ = 0;
  double number_ = 0;
  std::string string_;
  std::vector<Json> array_;        // array elements, or object values
  std::vector<std::string> keys_;  // object keys, parallel to array_
};

}  // namespace tlkit
