#pragma once
// Export of a (fine-tuned) classifier as ONE TorchScript file that Python runs as it is:
//   m = torch.jit.load("model.pt"); scores = m(images)   # images normalised like m.tlkit_mean/std
// The file carries its class names (m.tlkit_class_names), preprocessing (tlkit_resize, tlkit_crop,
// tlkit_mean, tlkit_std, tlkit_input_size), architecture, weights source and head name as
// attributes. It is saved in eval mode (Dropout off, BatchNorm on running statistics) and written
// atomically (a failure leaves no half-written file).

#include <filesystem>

#include <tlkit/model/classifier.h>

namespace tlkit::model {

void export_model(Classifier& model, const std::filesystem::path& path);

// Writes a TorchScript module to `path` atomically, streamed (no in-memory copy of the archive).
void save_module(const torch::jit::Module& module, const std::filesystem::path& path);

}  // namespace tlkit::model
