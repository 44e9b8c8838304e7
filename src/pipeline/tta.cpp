#include <tlkit/pipeline/tta.h>

#include <tlkit/pipeline/build.h>

namespace tlkit::pipeline {

std::shared_ptr<data::Transform> tta_transform(const model::Classifier& model, data::TtaMode mode) {
  if (mode == data::TtaMode::kNone) return eval_transform(model);
  const auto& md = model.metadata();
  return std::make_shared<data::TtaViews>(mode, static_cast<int>(md.resize),
                                          static_cast<int>(md.crop), normalization(md),
                                          input_channels(model));
}

}  // namespace tlkit::pipeline
