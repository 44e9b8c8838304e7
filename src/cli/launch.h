#pragma once
// Data parallelism from the command line: `--nproc N` starts N worker processes of this binary
// (rendezvous on 127.0.0.1 at a free port, the CPU threads split between them) and waits for
// them; a worker (started so, or by torchrun / any launcher that sets RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR, MASTER_PORT) joins the process group before it trains.

#include <optional>
#include <string>

#include <cxxopts.hpp>

namespace tlkit::cli {

// --nproc, --dist-backend, --dist-timeout (group "Parallel").
void add_parallel_options(cxxopts::Options& options);

// With --nproc N > 1 in a process no launcher started: starts the N workers, waits for them and
// returns the exit code for this process (0 when every rank succeeded; else the first failing
// rank's, after the others were stopped). Otherwise nullopt: this process trains.
// `argc/argv` are the subcommand's (argv[0] is its name).
std::optional<int> launch_if_asked(const cxxopts::ParseResult& result, int argc, char** argv);

// In a worker (the launcher's variables set): connects to the other ranks and makes this process
// one of them (train::set_world); logs of ranks other than 0 are kept to warnings and errors,
// prefixed with the rank. Does nothing in a single process. Returns the device this process
// trains on: `device`, except that plain "cuda" becomes "cuda:LOCAL_RANK" (one GPU per process).
std::string join_process_group(const cxxopts::ParseResult& result, const std::string& device);

}  // namespace tlkit::cli
