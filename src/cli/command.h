#pragma once
// The CLI's subcommand registry and the options every subcommand shares.
// Each subcommand lives in its own src/cli/<name>.cpp and registers itself with
// TLKIT_REGISTER_COMMAND; main.cpp dispatches on the first argument.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include <cxxopts.hpp>

namespace tlkit::cli {

// Exit codes shared by every subcommand.
enum ExitCode : int { kOk = 0, kFailure = 1, kUsage = 2 };

struct Command {
  std::string name;
  std::string summary;
  std::function<int(int argc, char** argv)> run;
};

std::vector<Command>& registry();

struct Registrar {
  Registrar(std::string name, std::string summary, std::function<int(int, char**)> run);
};

// Adds --help, --device, --threads, --seed, -v/--verbose, -q/--quiet.
void add_common_options(cxxopts::Options& options);

// Settings from the common options, applied to the process (log level, LibTorch threads, seed).
struct Common {
  std::string device = "cpu";
  int threads = 0;
  std::uint64_t seed = 0;
};

// Parses argv with `options`. Prints help (with `example`) and returns false when --help was given.
// Throws cxxopts exceptions on bad syntax; main() turns those into exit code 2.
bool parse(cxxopts::Options& options, int argc, char** argv, const std::string& example,
           cxxopts::ParseResult& result);

// The command line with "--name A B C" (the values up to the next option) spread into
// "--name=A --name=B --name=C" for each of `names`, so an option that collects values takes
// several after one flag. The strings live as long as the returned object.
struct SpreadArgs {
  std::vector<std::string> strings;
  std::vector<char*> argv;
  int argc() const { return static_cast<int>(argv.size()); }
};
SpreadArgs spread_values(int argc, char** argv, std::initializer_list<const char*> names);

// A wrong command line (exit code 2; main() prints it with a pointer to --help).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws UsageError naming the first option of `names` that the command line does not give.
void require(const cxxopts::ParseResult& result, std::initializer_list<const char*> names);

// The models a command reads from `--model M.pt...` or `--ensemble RUN...` (evaluate, export):
// exactly one of the two must be given (a UsageError otherwise).
struct ModelsOrRuns {
  std::vector<std::string> models, runs;
};
ModelsOrRuns models_or_runs(const cxxopts::ParseResult& result);

// Flushes standard output and throws tlkit::Error when `what` written there was lost (a closed
// pipe, a full disk): a command whose output is its result must not exit 0 then.
void check_stdout(const std::string& what);

// Applies the common options: log level, thread count, seed; checks that the device exists.
Common apply_common(const cxxopts::ParseResult& result);

}  // namespace tlkit::cli

#define TLKIT_CLI_CONCAT_INNER(a, b) a##b
#define TLKIT_CLI_CONCAT(a, b) TLKIT_CLI_CONCAT_INNER(a, b)
#define TLKIT_REGISTER_COMMAND(name, summary, fn) \
  static ::tlkit::cli::Registrar TLKIT_CLI_CONCAT(tlkit_command_, __LINE__)(name, summary, fn)
