#include <tlkit/core/interrupt.h>

#include <csignal>
#include <cstring>

#include <unistd.h>

namespace tlkit {
namespace {

volatile std::sig_atomic_t received = 0;

void on_signal(int signal) {
  if (received != 0) {
    // The second request: no more waiting for the step to finish.
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  received = signal;
  const char message[] =
      "\ntlkit: stopping after the current step and writing a checkpoint (signal again to quit "
      "at once)\n";
  [[maybe_unused]] const auto ignored = ::write(STDERR_FILENO, message, sizeof(message) - 1);
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);  // the terminal closed: stop as gracefully
}

void ignore_broken_pipes() { std::signal(SIGPIPE, SIG_IGN); }

int interrupt_signal() { return static_cast<int>(received); }

void set_interrupt_signal(int signal) { received = signal; }

std::string signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal " + std::to_string(signal);
  }
}

void throw_if_interrupted(const std::string& doing) {
  if (const int signal = interrupt_signal())
    throw Interrupted(signal, "stopped by " + signal_name(signal) + " while " + doing);
}

}  // namespace tlkit
