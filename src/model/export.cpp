#include <tlkit/model/export.h>

#include <sstream>

#include <torch/script.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

namespace tlkit::model {

void export_model(Classifier& model, const std::filesystem::path& path) {
  model.store_metadata();
  const bool was_training = model.is_training();
  model.train(false);
  std::ostringstream bytes;
  try {
    model.module().save(bytes);
  } catch (const c10::Error& e) {
    model.train(was_training);
    fail("cannot serialise the model for '", path.string(), "': ", e.what_without_backtrace());
  }
  model.train(was_training);
  write_file_atomic(path, bytes.str());
  const auto& md = model.metadata();
  const auto what = md.architecture == "unknown" ? std::string("the model") : md.architecture;
  logger()->info("wrote {} ({} classes, input {}x{}) to {}", what, model.num_classes(), md.crop, md.crop,
                 path.string());
}

}  // namespace tlkit::model
