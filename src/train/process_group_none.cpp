// Data parallelism left out (built with TLKIT_WITH_DISTRIBUTED=OFF, without c10d and Gloo): one
// process trains as ever; a group of several processes is refused with one clear error.
#include <tlkit/train/distributed.h>

namespace tlkit::train {

bool data_parallel_available() { return false; }

std::shared_ptr<Communicator> connect(const DistributedEnv& env, std::chrono::milliseconds,
                                      const std::string&) {
  require_data_parallel("rank " + std::to_string(env.rank) + " of a group of " +
                        std::to_string(env.world_size) + " processes (WORLD_SIZE=" +
                        std::to_string(env.world_size) + ")");
  return nullptr;  // not reached
}

}  // namespace tlkit::train
