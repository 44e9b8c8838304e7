#pragma once
// Reading weights saved by Python, without Python:
//  * torch.save(model.state_dict(), "w.pth") files, in both the zip format (PyTorch ≥ 1.6) and the
//    legacy format torchvision's published checkpoints use (e.g. vgg16-397923af.pth). The pickle
//    is read by a small pickle machine that knows the opcodes torch.save emits (protocols 2-5)
//    and rebuilds tensors from their storages; other Python objects are not supported (a clear
//    error). torch::pickle_load cannot do this in LibTorch 1.13: it turns the OrderedDict of a
//    state dict into None.
//  * .safetensors files: u64 little-endian header size, a JSON header of
//    {name: {dtype, shape, data_offsets}}, then the raw little-endian data.
// load_state_dict copies a StateDict into a torch::nn::Module by name, checking that every
// parameter and buffer is present with the same shape.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

namespace tlkit::model {

// Named tensors in file order.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

// By content: a zip or legacy torch.save file, or a .safetensors file.
StateDict read_state_dict(const std::filesystem::path& path);
StateDict read_torch_save(const std::filesystem::path& path);
StateDict read_safetensors(const std::filesystem::path& path);
void write_safetensors(const std::filesystem::path& path, const StateDict& state);

// Copies `state` into the module's parameters and buffers. Every module entry must be in `state`
// with the same shape (BatchNorm's num_batches_tracked may be missing: old checkpoints lack it);
// with `strict`, entries the module does not have are an error too. Nothing is copied on error.
void load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict = true);

}  // namespace tlkit::model
