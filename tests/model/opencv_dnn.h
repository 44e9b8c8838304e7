#pragma once
// Runs an ONNX file's bytes in OpenCV's DNN module (its own CPU backend) on a float batch
// [N, C, H, W]: the logits [N, classes] of the output "logits" for input "input".
#include <string>
#include <vector>

#include <torch/torch.h>
#include <opencv2/dnn.hpp>

namespace tlkit::test {

inline at::Tensor opencv_logits(const std::string& onnx, const at::Tensor& images) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(onnx.data(), onnx.size());
  net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  const auto input = images.contiguous();
  const std::vector<int> dims(input.sizes().begin(), input.sizes().end());
  const cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F, input.data_ptr<float>());
  net.setInput(blob, "input");
  const cv::Mat out = net.forward("logits");
  return torch::from_blob(const_cast<float*>(out.ptr<float>()), {out.size[0], out.size[1]},
                          torch::kFloat)
      .clone();
}

}  // namespace tlkit::test
