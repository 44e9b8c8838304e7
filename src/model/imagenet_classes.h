#pragma once
// ImageNet-1k's class names for imported torchvision networks (internal to the model layer).
#include <string>
#include <vector>

namespace tlkit::model::detail {

const std::vector<std::string>& imagenet_class_names();  // 1000 names, torchvision's order

}  // namespace tlkit::model::detail
