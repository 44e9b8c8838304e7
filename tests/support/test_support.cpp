#include "support/test_support.h"

#include <gtest/gtest.h>

#include <tlkit/core/error.h>
#include <tlkit/train/distributed.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <random>

#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace tlkit::test {

TempDir::TempDir() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  path_ =
      fs::temp_directory_path() / ("tlkit_test_" + std::to_string(::getpid()) + "_" +
                                   std::to_string(counter++) + "_" + std::to_string(rd() % 100000));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

CommandResult run_command(const std::string& command_line) {
  CommandResult result;
  FILE* pipe = ::popen((command_line + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

fs::path source_dir() { return TLKIT_SOURCE_DIR; }
fs::path test_data_dir() { return TLKIT_TEST_DATA_DIR; }
std::string torch_python() { return TLKIT_TORCH_PYTHON; }
bool data_parallel_built() { return train::data_parallel_available(); }
std::string cli_path() { return TLKIT_CLI_PATH; }

CommandResult tlkit_cli(const std::string& args) {
  return run_command("'" + cli_path() + "' " + args);
}

void expect_error(const std::function<void()>& fn, const std::string& fragment) {
  try {
    fn();
    ADD_FAILURE() << "expected tlkit::Error containing '" << fragment << "'";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace tlkit::test
