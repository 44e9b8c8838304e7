#include <tlkit/core/json.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <tlkit/core/error.h>

namespace tlkit {
namespace {

void append_escaped(std::string& out, const std::string& text) {
  out += '"';
  for (const unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
          out += buffer;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// The shortest of %.15g / %.17g that reads back as the same double.
std::string format_double(double value) {
  if (!std::isfinite(value)) return "null";  // JSON has no NaN/Inf
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.15g", value);
  if (std::strtod(buffer, nullptr) != value) std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  std::string text = buffer;
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  Json document() {
    Json value = parse_value(0);
    skip_space();
    if (pos_ != text_.size()) error("unexpected text after the value");
    return value;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail("invalid JSON at offset ", pos_, ": ", what);
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }
  char peek() {
    skip_space();
    if (pos_ >= text_.size()) error("unexpected end of text");
    return text_[pos_];
  }
  void expect(char c) {
    if (peek() != c) error(std::string("expected '") + c + "'");
    ++pos_;
  }
  bool consume_word(const char* word) {
    const std::string w(word);
    if (text_.compare(pos_, w.size(), w) != 0) return false;
    pos_ += w.size();
    return true;
  }

  Json parse_value(int depth) {
    if (depth > 512) error("nested too deeply");
    const char c = peek();
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Json(parse_string());
    if (consume_word("true")) return Json(true);
    if (consume_word("false")) return Json(false);
    if (consume_word("null")) return Json();
    return parse_number();
  }

  Json parse_object(int depth) {
    Json object = Json::object();
    expect('{');
    if (peek() == '}') {
      ++pos_;
      return object;
    }
    while (true) {
      if (peek() != '"') error("expected a string key");
      std::string key = parse_string();
      expect(':');
      object[key] = parse_value(depth + 1);
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      return object;
    }
  }

  Json parse_array(int depth) {
    Json array = Json::array();
    expect('[');
    if (peek() == ']') {
      ++pos_;
      return array;
    }
    while (true) {
      array.push_back(parse_value(depth + 1));
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']');
      return array;
    }
  }

  std::uint32_t parse_hex4() {
    if (pos_ + 4 > text_.size()) error("truncated \\u escape");
    std::uint32_t code = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[pos_++];
      code <<= 4;
      if (h >= '0' && h <= '9')
        code |= h - '0';
      else if (h >= 'a' && h <= 'f')
        code |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F')
        code |= h - 'A' + 10;
      else
        error("bad hex digit in \\u escape");
    }
    return code;
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) error("unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) error("unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          std::uint32_t code = parse_hex4();
          if (code >= 0xD800 && code < 0xDC00 && consume_word("\\u")) {
            const std::uint32_t low = parse_hex4();
            if (low < 0xDC00 || low >= 0xE000) error("bad UTF-16 surrogate pair");
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, code);
          break;
        }
        default:
          error(std::string("unknown escape \\") + e);
      }
    }
  }

  Json parse_number() {
    const size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    bool integral = true;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c >= '0' && c <= '9') {
        ++pos_;
        continue;
      }
      if (c == '.' || c == 'e' || c == 'E' || c == '+' || (c == '-' && pos_ > start)) {
        integral = false;
        ++pos_;
        continue;
      }
      break;
    }
    const std::string token = text_.substr(start, pos_ - start);
    if (token.empty() || token == "-") error("expected a value");
    char* end = nullptr;
    if (integral) {
      errno = 0;
      const long long value = std::strtoll(token.c_str(), &end, 10);
      if (errno == 0 && *end == '\0') return Json(static_cast<std::int64_t>(value));
    }
    const double value = std::strtod(token.c_str(), &end);
    if (*end != '\0') error("bad number '" + token + "'");
    return Json(value);
  }

  const std::string& text_;
  size_t pos_ = 0;
};

}  // namespace

const char* Json::type_name() const {
  switch (type_) {
    case Type::Null:
      return "null";
    case Type::Bool:
      return "boolean";
    case Type::Integer:
      return "integer";
    case Type::Number:
      return "number";
    case Type::String:
      return "string";
    case Type::Array:
      return "array";
    case Type::Object:
      return "object";
  }
  return "?";
}

bool Json::as_bool() const {
  TLKIT_CHECK(type_ == Type::Bool, "JSON: expected a boolean, found ", type_name());
  return bool_;
}

std::int64_t Json::as_int() const {
  if (type_ == Type::Integer) return int_;
  TLKIT_CHECK(type_ == Type::Number && std::floor(number_) == number_,
              "JSON: expected an integer, found ", type_name());
  // 2^63 is exact in a double; beyond the range the cast would be undefined (found by
  // tests/fuzz/fuzz_manifest).
  TLKIT_CHECK(number_ >= -9223372036854775808.0 && number_ < 9223372036854775808.0,
              "JSON: the integer ", number_, " is out of range");
  return static_cast<std::int64_t>(number_);
}

double Json::as_double() const {
  if (type_ == Type::Integer) return static_cast<double>(int_);
  TLKIT_CHECK(type_ == Type::Number, "JSON: expected a number, found ", type_name());
  return number_;
}

const std::string& Json::as_string() const {
  TLKIT_CHECK(type_ == Type::String, "JSON: expected a string, found ", type_name());
  return string_;
}

const std::vector<Json>& Json::as_array() const {
  TLKIT_CHECK(type_ == Type::Array, "JSON: expected an array, found ", type_name());
  return array_;
}

std::vector<std::string> Json::as_string_list() const {
  std::vector<std::string> out;
  for (const auto& item : as_array()) out.push_back(item.as_string());
  return out;
}

std::vector<double> Json::as_double_list() const {
  std::vector<double> out;
  for (const auto& item : as_array()) out.push_back(item.as_double());
  return out;
}

Json& Json::operator[](const std::string& key) {
  if (type_ == Type::Null) type_ = Type::Object;
  TLKIT_CHECK(type_ == Type::Object, "JSON: cannot set key '", key, "' on a ", type_name());
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return array_[i];
  }
  keys_.push_back(key);
  array_.emplace_back();
  return array_.back();
}

const Json& Json::at(const std::string& key) const {
  TLKIT_CHECK(type_ == Type::Object, "JSON: expected an object with key '", key, "', found ",
              type_name());
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return array_[i];
  }
  fail("JSON: missing key '", key, "'");
}

bool Json::contains(const std::string& key) const {
  if (type_ != Type::Object) return false;
  for (const auto& k : keys_) {
    if (k == key) return true;
  }
  return false;
}

void Json::push_back(Json value) {
  if (type_ == Type::Null) type_ = Type::Array;
  TLKIT_CHECK(type_ == Type::Array, "JSON: cannot append to a ", type_name());
  array_.push_back(std::move(value));
}

const Json& Json::at(size_t index) const {
  TLKIT_CHECK(index < as_array().size(), "JSON: index ", index, " out of range (size ",
              array_.size(), ")");
  return array_[index];
}

size_t Json::size() const {
  return (type_ == Type::Array || type_ == Type::Object) ? array_.size() : 0;
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

void Json::dump_to(std::string& out, int indent, int depth) const {
  const auto newline = [&](int level) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent * level), ' ');
  };
  switch (type_) {
    case Type::Null:
      out += "null";
      return;
    case Type::Bool:
      out += bool_ ? "true" : "false";
      return;
    case Type::Integer:
      out += std::to_string(int_);
      return;
    case Type::Number:
      out += format_double(number_);
      return;
    case Type::String:
      append_escaped(out, string_);
      return;
    case Type::Array:
    case Type::Object:
      break;
  }
  const bool object = type_ == Type::Object;
  out += object ? '{' : '[';
  // Arrays of scalars stay on one line; they are often long (class names, sources).
  const bool nested =
      object || (!array_.empty() && (array_[0].is_array() || array_[0].is_object()));
  for (size_t i = 0; i < array_.size(); ++i) {
    if (i > 0) out += (nested || indent < 0) ? "," : ", ";
    if (nested) newline(depth + 1);
    if (object) {
      append_escaped(out, keys_[i]);
      out += indent < 0 ? ":" : ": ";
    }
    array_[i].dump_to(out, indent, depth + 1);
  }
  if (nested && !array_.empty()) newline(depth);
  out += object ? '}' : ']';
}

Json Json::parse(const std::string& text) { return Parser(text).document(); }

}  // namespace tlkit
