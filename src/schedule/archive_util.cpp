#include "archive_util.h"

#include <c10/util/Exception.h>

#include <tlkit/core/error.h>

namespace tlkit::schedule::detail {
namespace {

c10::IValue read_value(torch::serialize::InputArchive& archive, const std::string& key,
                       const std::string& owner) {
  c10::IValue value;
  bool found = false;
  try {
    found = archive.try_read(key, value);
  } catch (const c10::Error& e) {
    fail(owner, " state: cannot read '", key, "': ", e.what_without_backtrace());
  }
  TLKIT_CHECK(found, owner, " state has no '", key,
              "'; the archive was not written by this schedule's save()");
  return value;
}

}  // namespace

void write_int(torch::serialize::OutputArchive& archive, const std::string& key,
               std::int64_t value) {
  archive.write(key, c10::IValue(value));
}

void write_double(torch::serialize::OutputArchive& archive, const std::string& key, double value) {
  archive.write(key, c10::IValue(value));
}

void write_doubles(torch::serialize::OutputArchive& archive, const std::string& key,
                   const std::vector<double>& values) {
  archive.write(key, c10::IValue(values));
}

void write_string(torch::serialize::OutputArchive& archive, const std::string& key,
                  const std::string& value) {
  archive.write(key, c10::IValue(value));
}

std::int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key,
                      const std::string& owner) {
  const auto value = read_value(archive, key, owner);
  TLKIT_CHECK(value.isInt(), owner, " state: '", key, "' should be an integer but holds ",
              value.tagKind());
  return value.toInt();
}

double read_double(torch::serialize::InputArchive& archive, const std::string& key,
                   const std::string& owner) {
  const auto value = read_value(archive, key, owner);
  TLKIT_CHECK(value.isDouble(), owner, " state: '", key, "' should be a number but holds ",
              value.tagKind());
  return value.toDouble();
}

std::vector<double> read_doubles(torch::serialize::InputArchive& archive, const std::string& key,
                                 const std::string& owner) {
  const auto value = read_value(archive, key, owner);
  TLKIT_CHECK(value.isDoubleList(), owner, " state: '", key,
              "' should be a list of numbers but holds ", value.tagKind());
  return value.toDoubleVector();
}

std::string read_string(torch::serialize::InputArchive& archive, const std::string& key,
                        const std::string& owner) {
  const auto value = read_value(archive, key, owner);
  TLKIT_CHECK(value.isString(), owner, " state: '", key, "' should be a string but holds ",
              value.tagKind());
  return value.toStringRef();
}

}  // namespace tlkit::schedule::detail
