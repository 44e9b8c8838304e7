#pragma once
// Built-in test problems for `tlkit bench`: fixed networks with their data, preprocessing, batch
// size and regularisation, so optimizer comparisons are repeatable and comparable with DeepOBS
// (Schneider, Balles & Hennig 2019, https://github.com/fsschneider/DeepOBS):
//
//   fmnist_2c2d    DeepOBS's 2c2d on Fashion-MNIST: conv5x5(32, same)-relu-maxpool2,
//                  conv5x5(64, same)-relu-maxpool2, dense 1024-relu, dense C; weights truncated
//                  normal (std 0.05), biases 0.05; batch 128, no regularisation, 100 epochs.
//                  3,274,634 parameters for 10 classes.
//   cifar10_3c3d   DeepOBS's 3c3d on CIFAR-10: conv5x5(64, valid)-relu-maxpool3/2(same),
//                  conv3x3(96, valid)-relu-maxpool3/2(same), conv3x3(128, same)-relu-maxpool3/2
//                  (same), dense 512-relu, dense 256-relu, dense C; Xavier weights, zero biases;
//                  batch 128, L2 0.002 on the weights (not the biases), 100 epochs, DeepOBS's
//                  augmentation (pad 2 + random crop, flip, brightness/contrast/saturation jitter).
//                  895,210 parameters for 10 classes.
//   vgg_cifar      the small VGG of scripts/export_vgg16.py (--arch vgg_cifar): 3 blocks of two
//                  conv3x3+BN+ReLU (32, 64, 128) with max-pooling, avgpool 2x2, classifier
//                  256-256-C with dropout 0.5; torchvision's VGG initialisation; batch 128, no
//                  regularisation, CIFAR augmentation.
//
// "same"/"valid" are TensorFlow's padding rules (DeepOBS's networks come from TensorFlow):
// "same" pads so the output is ceil(input / stride), the odd pixel on the right/bottom.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <tlkit/train/network.h>

namespace tlkit::pipeline {

struct TestProblem {
  std::string name;
  std::string summary;              // one line
  std::string default_data;         // a source string, e.g. "fashion-mnist:/usr/share/datasets/..."
  std::int64_t input_channels;      // 1: grey (RGB input is averaged), 3: RGB
  std::int64_t input_size;          // square network input
  std::array<double, 3> mean, std;  // normalisation of [0, 1] pixels
  std::int64_t batch_size;
  double l2;                 // L2 factor on weights (0.5 * l2 * |w|^2 added to the loss)
  std::int64_t epochs;       // the reference's training length
  double target;             // default validation-accuracy target for time-to-target
  std::string augmentation;  // "none" | "cifar" (pad 2 + crop 32, flip, colour jitter)
  bool jitter = false;       // colour jitter as part of "cifar" (DeepOBS's cifar10 has it)

  // A freshly initialised network for `num_classes` classes, drawn from torch's global RNG (seed
  // it first). Its parameters are named "<layer>.weight" / "<layer>.bias".
  std::shared_ptr<train::ModuleNetwork> make_network(std::int64_t num_classes) const;
};

// The problem called `name`; throws tlkit::Error listing the known ones.
const TestProblem& test_problem(const std::string& name);
std::vector<std::string> test_problem_names();

// TensorFlow's "same" max-pooling of [N, C, H, W]: output ceil(H / stride) x ceil(W / stride),
// the padding (never the maximum) split with the odd pixel on the right / bottom.
at::Tensor same_max_pool2d(const at::Tensor& input, std::int64_t kernel, std::int64_t stride);

// Which parameters a problem's L2 applies to: its weights, not its biases or norm layers' shifts.
bool is_regularized_weight(const std::string& parameter_name, const at::Tensor& parameter);

}  // namespace tlkit::pipeline
