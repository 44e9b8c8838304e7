#pragma once
// The test-time augmentation views (data/tta.h) of a model's preprocessing: its resize, input
// size, normalisation and input channels, as eval_transform (pipeline/build.h) uses them.

#include <memory>

#include <tlkit/data/tta.h>
#include <tlkit/model/classifier.h>

namespace tlkit::pipeline {

// kNone gives eval_transform(model) (one [C, H, W] image per sample); the others give
// data::TtaViews ([V, C, H, W] per sample).
std::shared_ptr<data::Transform> tta_transform(const model::Classifier& model, data::TtaMode mode);

}  // namespace tlkit::pipeline
