#pragma once
// Ctrl-C, `kill` and a closed terminal (SIGINT, SIGTERM, SIGHUP) during a long run. The first signal only raises a flag: the
// trainer finishes the step in hand, writes a checkpoint a resume continues from exactly, and
// throws Interrupted; the command then exits 128 + the signal (130, 143, 129). A second signal ends the
// process at once (the signal's default action).

#include <string>

#include <tlkit/core/error.h>

namespace tlkit {

// The handlers for SIGINT, SIGTERM and SIGHUP; safe to call more than once.
void install_interrupt_handlers();

// SIGPIPE ignored: a reader that closes the pipe (`tlkit ... | head`) makes writes fail (EPIPE)
// instead of killing the process; a run goes on, and output that is the result is checked.
void ignore_broken_pipes();

// The signal that asked this process to stop (SIGINT, SIGTERM, SIGHUP), or 0.
int interrupt_signal();
// Raises the flag as a signal would (tests, or a caller that stops a run itself); 0 clears it.
void set_interrupt_signal(int signal);

// "SIGINT", "SIGTERM", or "signal N".
std::string signal_name(int signal);

// The error a run that stopped on a signal ends with; main() turns it into exit code 128 + signal.
class Interrupted : public Error {
 public:
  Interrupted(int signal, const std::string& message) : Error(message), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

// Throws Interrupted ("stopped by SIGINT while <doing>") when a signal arrived.
void throw_if_interrupted(const std::string& doing);

}  // namespace tlkit
