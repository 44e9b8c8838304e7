#pragma once
// tlkit import: a torchvision classifier from its weights alone, without Python. The network is
// rebuilt as a TorchScript module in C++ with torchvision's module names (src/model/
// torchvision_models.h), its weights read from a torch.save(model.state_dict()) file or a
// .safetensors file (weights_file.h), every name and shape checked against the architecture,
// and ImageNet preprocessing (resize 256, centre crop 224, ImageNet mean / std) stored as tlkit
// metadata. The result loads like any exported model (Classifier::load, Python torch.jit.load).

#include <filesystem>
#include <string>
#include <vector>

#include <tlkit/model/classifier.h>
#include <tlkit/model/weights_file.h>

namespace tlkit::model {

// The architectures import_torchvision builds, in torchvision's names.
const std::vector<std::string>& importable_architectures();

// `arch` with the weights of `state` (the class count read from its head, 1000 for ImageNet);
// throws tlkit::Error naming the first few missing, unexpected or misshapen entries.
// `origin` is stored as the weights' source. A missing num_batches_tracked (checkpoints of
// torch < 0.4.1) counts as 0.
Classifier build_imported(const std::string& arch, const StateDict& state,
                          const std::string& origin);

// build_imported on the weights of `weights` (origin "file:NAME sha256:HEX").
Classifier import_torchvision(const std::string& arch, const std::filesystem::path& weights);

}  // namespace tlkit::model
