#pragma once
// Reading a model's weights from the files torchvision users hold, without Python:
//  - torch.save(model.state_dict(), f) as torch >= 1.6 writes it: a zip archive with a pickled
//    OrderedDict (`<name>/data.pkl`) and one record per storage (`<name>/data/<key>`);
//  - the legacy (pre-1.6, non-zip) torch.save format of older hub checkpoints (e.g.
//    vgg16-397923af.pth): a sequence of pickles followed by the raw storages;
//  - .safetensors: an 8-byte little-endian header length, a JSON header (dtype, shape,
//    data_offsets per tensor) and the raw little-endian data.
// LibTorch's torch::pickle_load cannot read the first two (pytorch/pytorch #100741). The pickles
// are read by a restricted unpickler that knows only what a state_dict holds (see
// src/model/pickle_reader.h): a weight file cannot run code.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace tlkit::model {

// name -> tensor, in the file's order.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

// Detects the format from the file's first bytes; throws tlkit::Error naming the file and what
// is wrong (not a weight file, a full pickled model or checkpoint dict, damaged data).
StateDict read_weights_file(const std::filesystem::path& path);

// The format read_weights_file would use: "zip", "legacy", "safetensors" (or "" when unknown).
std::string weights_file_format(const std::filesystem::path& path);

}  // namespace tlkit::model
