// tlkit: the command-line tool. Dispatches to one subcommand per src/cli/<name>.cpp.

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <c10/util/Exception.h>
#include <spdlog/spdlog.h>

#include <tlkit/core/error.h>
#include <tlkit/core/interrupt.h>
#include <tlkit/core/logging.h>
#include <tlkit/model/script_checks.h>
#include <tlkit/version.h>

#include "command.h"

namespace {

void print_usage() {
  std::cout
      << "tlkit " << TLKIT_VERSION_STRING
      << " - transfer learning on LibTorch\n\nUsage: tlkit <command> [options]\n\nCommands:\n";
  auto commands = tlkit::cli::registry();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& command : commands) {
    std::string name = command.name;
    name.resize(std::max<size_t>(name.size(), 10), ' ');
    std::cout << "  " << name << "  " << command.summary << "\n";
  }
  std::cout << "\nRun 'tlkit <command> --help' for a command's options and an example.\n";
}

// "cannot create directories 'runs/x': Permission denied" from std::filesystem's
// "filesystem error: cannot create directories: Permission denied [runs/x]".
std::string describe(const std::filesystem::filesystem_error& e) {
  std::string what = e.what();
  const std::string prefix = "filesystem error: ";
  if (what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
  const auto cause = e.code().message();
  const auto at = what.find(": " + cause);
  std::string text = at == std::string::npos ? what : what.substr(0, at);
  if (!e.path1().empty()) text += " '" + e.path1().string() + "'";
  if (!e.path2().empty()) text += " and '" + e.path2().string() + "'";
  return text + ": " + cause;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tlkit::cli;
  tlkit::ignore_broken_pipes();
  // Log lines go to stderr; stdout carries results only.
  tlkit::logger()->set_pattern("[%H:%M:%S] [%^%l%$] %v");
  if (argc < 2) {
    print_usage();
    return kUsage;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage();
    return kOk;
  }
  if (name == "--version" || name == "version") {
    std::cout << "tlkit " << TLKIT_VERSION_STRING << "\n";
    return kOk;
  }
  const auto& commands = registry();
  auto it = std::find_if(commands.begin(), commands.end(),
                         [&](const Command& command) { return command.name == name; });
  if (it == commands.end()) {
    std::cerr << "tlkit: unknown command '" << name << "'; run 'tlkit --help' for the list\n";
    return kUsage;
  }
  // A data-parallel worker names its rank in what it prints.
  std::string who = name;
  if (const char* rank = std::getenv("RANK"); rank && std::getenv("WORLD_SIZE"))
    who += std::string(" [rank ") + rank + "]";
  try {
    return it->run(argc - 1, argv + 1);
  } catch (const UsageError& e) {
    std::cerr << "tlkit " << name << ": " << e.what() << " (see 'tlkit " << name << " --help')\n";
    return kUsage;
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "tlkit " << name << ": " << e.what() << " (see 'tlkit " << name << " --help')\n";
    return kUsage;
  } catch (const tlkit::Interrupted& e) {
    std::cerr << "tlkit " << who << ": " << e.what() << "\n";
    return 128 + e.signal();
  } catch (const tlkit::Error& e) {
    std::cerr << "tlkit " << who << ": error: " << e.what() << "\n";
    return kFailure;
  } catch (const c10::Error& e) {
    std::cerr << "tlkit " << who
              << ": error in LibTorch: " << tlkit::model::short_message(e.what_without_backtrace())
              << "\n";
    return kFailure;
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << "tlkit " << who << ": error: " << describe(e) << "\n";
    return kFailure;
  } catch (const std::exception& e) {  // the TorchScript interpreter's errors among them
    std::cerr << "tlkit " << who << ": error: " << tlkit::model::short_message(e) << "\n";
    return kFailure;
  }
}
