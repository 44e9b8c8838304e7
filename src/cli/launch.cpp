#include "launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/train/distributed.h>

#include "command.h"

namespace tlkit::cli {
namespace {

volatile sig_atomic_t forwarded_signal = 0;
std::vector<pid_t> children;  // written before the handlers are installed

void forward(int signal) {
  forwarded_signal = signal;
  for (const pid_t pid : children)
    if (pid > 0) kill(pid, signal);
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  TLKIT_CHECK(fd >= 0, "cannot open a socket for the rendezvous: ", std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  const int error = errno;
  close(fd);
  TLKIT_CHECK(ok,
              "cannot find a free port on 127.0.0.1 for the rendezvous: ", std::strerror(error));
  return ntohs(address.sin_port);
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    const char* name = sigabbrev_np(signal);
    return "was killed by signal " + std::to_string(signal) +
           (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

int exit_code(int status) {
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

// The subcommand's arguments without --nproc, with --threads set to the worker's share.
std::vector<std::string> worker_arguments(int argc, char** argv, int threads) {
  std::vector<std::string> args{"tlkit"};
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool with_value = arg == "--nproc" || arg == "--threads";
    if (with_value) {
      ++i;
      continue;
    }
    if (arg.rfind("--nproc=", 0) == 0 || arg.rfind("--threads=", 0) == 0) continue;
    args.push_back(arg);
  }
  args.push_back("--threads=" + std::to_string(threads));
  return args;
}

}  // namespace

void add_parallel_options(cxxopts::Options& options) {
  options.add_options("Parallel")(
      "nproc",
      "data-parallel worker processes on this machine (c10d); --batch-size is the whole step's "
      "batch, split between them, so the result does not depend on it (torchrun: leave at 1)",
      cxxopts::value<int>()->default_value("1"))(
      "dist-backend", "c10d backend: gloo (CPU) or nccl (CUDA); default: by --device",
      cxxopts::value<std::string>())(
      "dist-timeout",
      "seconds a rank waits for the others (rendezvous, each collective) before it gives up",
      cxxopts::value<double>()->default_value("300"))(
      "allreduce",
      "overlap: gradient buckets are allreduced while backward runs; after: once backward is done "
      "(the same result)",
      cxxopts::value<std::string>()->default_value("overlap"));
}

std::optional<int> launch_if_asked(const cxxopts::ParseResult& result, int argc, char** argv) {
  const int nproc = result["nproc"].as<int>();
  const int most = 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (nproc < 1 || nproc > most)
    throw UsageError("--nproc " + std::to_string(nproc) + " is out of range: use 1.." +
                     std::to_string(most));
  const auto allreduce = result["allreduce"].as<std::string>();
  if (allreduce != "overlap" && allreduce != "after")
    throw UsageError("--allreduce '" + allreduce + "': use overlap or after");
  const double timeout = result["dist-timeout"].as<double>();
  if (!(timeout >= 1 && timeout <= 86400))
    throw UsageError("--dist-timeout must be between 1 and 86400 seconds");
  const bool launched = std::getenv("WORLD_SIZE") != nullptr;
  if (nproc == 1) return std::nullopt;
  if (launched)
    throw UsageError("--nproc " + std::to_string(nproc) +
                     " in a process that a launcher started (WORLD_SIZE is set): the launcher "
                     "sets the number of processes; leave --nproc at 1");
  train::require_data_parallel("--nproc " + std::to_string(nproc));

  const int total_threads =
      result["threads"].as<int>() > 0
          ? result["threads"].as<int>()
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, total_threads / nproc);
  const auto args = worker_arguments(argc, argv, threads);
  const int port = free_port();
  std::cerr << "tlkit " << argv[0] << ": starting " << nproc << " processes (" << threads
            << " thread" << (threads == 1 ? "" : "s") << " each), rendezvous on 127.0.0.1:" << port
            << "\n";
  std::cerr.flush();
  std::fflush(stdout);

  children.assign(static_cast<size_t>(nproc), -1);
  const pid_t launcher = getpid();
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = fork();
    TLKIT_CHECK(pid >= 0, "cannot start worker process ", rank, ": ", std::strerror(errno));
    if (pid == 0) {
      // The worker dies with the launcher (no orphans even if the launcher is killed).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != launcher) _exit(137);
      // Its own process group: a Ctrl-C in the terminal reaches the launcher only, which passes
      // it on once (a second one from the terminal would make the ranks quit at once).
      setpgid(0, 0);
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      unsetenv("TORCHELASTIC_USE_AGENT_STORE");
      std::vector<char*> c_args;
      for (const auto& a : args) c_args.push_back(const_cast<char*>(a.c_str()));
      c_args.push_back(nullptr);
      execv("/proc/self/exe", c_args.data());
      std::fprintf(stderr, "tlkit: cannot start a worker: %s\n", std::strerror(errno));
      _exit(127);
    }
    children[static_cast<size_t>(rank)] = pid;
  }
  struct sigaction action {};
  action.sa_handler = forward;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);

  // Wait for every rank; after the first failure the others get a grace period to stop on their
  // own (a dead peer breaks their next collective at once), then SIGTERM, then SIGKILL.
  std::vector<int> status(static_cast<size_t>(nproc), 0);
  int running = nproc, first_failure = -1;
  bool stopping = false, terminated = false, hard_killed = false;
  std::chrono::steady_clock::time_point stop_started;
  const auto grace = std::chrono::seconds(10);
  std::vector<int> hung;  // ranks still running after the grace period
  const auto signal_rest = [&](int signal) {
    for (int rank = 0; rank < nproc; ++rank) {
      const pid_t child = children[static_cast<size_t>(rank)];
      if (child <= 0) continue;
      std::cerr << "tlkit " << argv[0] << ": rank " << rank << " has not stopped (hung?); sending "
                << (signal == SIGKILL ? "SIGKILL" : "SIGTERM") << "\n";
      kill(child, signal);
      // A stopped process (SIGSTOP, a debugger) acts on SIGTERM only once it runs again.
      if (signal == SIGTERM) {
        kill(child, SIGCONT);
        hung.push_back(rank);
      }
    }
  };
  while (running > 0) {
    int s = 0;
    const pid_t pid = waitpid(-1, &s, WNOHANG);
    if (pid > 0) {
      for (int rank = 0; rank < nproc; ++rank) {
        if (children[static_cast<size_t>(rank)] != pid) continue;
        status[static_cast<size_t>(rank)] = s;
        children[static_cast<size_t>(rank)] = -1;
        --running;
        if (!(WIFEXITED(s) && WEXITSTATUS(s) == 0) && first_failure < 0 && !forwarded_signal) {
          first_failure = rank;
          std::cerr << "tlkit " << argv[0] << ": rank " << rank << " of " << nproc << " (pid "
                    << pid << ") " << describe(s) << "; stopping the other ranks\n";
        }
      }
      continue;
    }
    // A forwarded Ctrl-C lets the ranks finish their step and write the checkpoint, however long
    // that takes (a second Ctrl-C, forwarded too, ends them at once); a failure starts the clock.
    if (first_failure >= 0 && !stopping) {
      stopping = true;
      stop_started = std::chrono::steady_clock::now();
    }
    if (stopping) {
      const auto waited = std::chrono::steady_clock::now() - stop_started;
      if (waited > grace && !terminated) {
        signal_rest(SIGTERM);
        terminated = true;
      } else if (waited > 2 * grace && !hard_killed) {
        signal_rest(SIGKILL);
        hard_killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (forwarded_signal) return 128 + forwarded_signal;
  if (first_failure < 0) return 0;
  if (!hung.empty()) {
    std::cerr << "tlkit " << argv[0] << ": rank";
    for (size_t i = 0; i < hung.size(); ++i) std::cerr << (i ? ", " : " ") << hung[i];
    std::cerr << (hung.size() == 1 ? " was" : " were") << " still running " << grace.count()
              << " s after rank " << first_failure
              << " failed: look there first for the cause (a hang, a stopped or swapping process, "
                 "a network partition)\n";
  }
  std::cerr << "tlkit " << argv[0]
            << ": the data-parallel run failed; if its run folder holds checkpoints/last.pt, the "
               "same command with --resume continues it\n";
  const int code = exit_code(status[static_cast<size_t>(first_failure)]);
  return code == 0 ? 1 : code;
}

std::string join_process_group(const cxxopts::ParseResult& result, const std::string& device) {
  const auto env = train::distributed_env_from_environment();
  if (!env || env->world_size <= 1) return device;
  std::string backend = device.rfind("cuda", 0) == 0 ? "nccl" : "gloo";
  if (result.count("dist-backend")) backend = result["dist-backend"].as<std::string>();
  if (backend != "gloo" && backend != "nccl")
    throw UsageError("--dist-backend '" + backend + "': use gloo or nccl");
  if (env->rank != 0) {
    // One voice: the other ranks say only what goes wrong, naming themselves.
    logger()->set_pattern("[%H:%M:%S] [%^%l%$] [rank " + std::to_string(env->rank) + "] %v");
    if (logger()->level() < spdlog::level::warn) logger()->set_level(spdlog::level::warn);
  }
  const auto timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(1000 * result["dist-timeout"].as<double>()));
  train::set_overlap_allreduce(result["allreduce"].as<std::string>() == "overlap");
  train::set_world(train::connect(*env, timeout, backend));
  logger()->info("data parallel: rank {} of {} ({}, rendezvous {}:{})", env->rank, env->world_size,
                 backend, env->master_addr, env->master_port);
  // One GPU per process: plain "cuda" becomes this rank's GPU on its machine.
  return device == "cuda" ? "cuda:" + std::to_string(env->local_rank) : device;
}

}  // namespace tlkit::cli
