#pragma once
// tlkit's one error type and its check macro.
//
// Every failure a user can cause (bad option, unreadable file, wrong format) is reported as a
// tlkit::Error whose message says what was wrong and how to fix it. At I/O boundaries, library
// code catches c10::Error / cv::Exception and rethrows it as a tlkit::Error naming the file.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tlkit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace detail

// Throws tlkit::Error with the pieces streamed together.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(detail::concat(std::forward<Args>(args)...));
}

}  // namespace tlkit

// TLKIT_CHECK(cond, "what was wrong", value, "; how to fix it") throws tlkit::Error when cond is
// false.
#define TLKIT_CHECK(cond, ...)               \
  do {                                       \
    if (!(cond)) ::tlkit::fail(__VA_ARGS__); \
  } while (false)
