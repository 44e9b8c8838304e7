#include <tlkit/model/export.h>

#include <torch/csrc/jit/serialization/export.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>

namespace tlkit::model {

void save_module(const torch::jit::Module& module, const std::filesystem::path& path) {
  // Streamed to the temporary file: no copy of the whole archive in memory (550 MB for VGG16).
  AtomicFile file(path);
  try {
    torch::jit::ExportModule(
        module, [&file](const void* data, size_t size) { return file.write(data, size); });
  } catch (const c10::Error& e) {
    fail("cannot serialise the model for '", path.string(), "': ", e.what_without_backtrace());
  }
  file.commit();
}

void export_model(Classifier& model, const std::filesystem::path& path) {
  model.store_metadata();
  const bool was_training = model.is_training();
  model.train(false);
  try {
    save_module(model.module(), path);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  const auto& md = model.metadata();
  const auto what = md.architecture == "unknown" ? std::string("the model") : md.architecture;
  logger()->info("wrote {} ({} classes, input {}x{}) to {}", what, model.num_classes(), md.crop, md.crop,
                 path.string());
}

}  // namespace tlkit::model
