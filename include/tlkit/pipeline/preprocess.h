#pragma once
// A model's own preprocessing, from the metadata stored in its file (resize, centre crop,
// mean / std): the transforms every command that feeds images to that model uses.

#include <memory>

#include <tlkit/data/transforms.h>
#include <tlkit/model/classifier.h>

namespace tlkit::pipeline {

data::Normalization model_normalization(const model::Classifier& model);
// Resize -> centre crop -> normalise (evaluation, feature extraction, prediction).
std::shared_ptr<data::Transform> eval_transform_for(const model::Classifier& model);

}  // namespace tlkit::pipeline
