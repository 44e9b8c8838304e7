// tlkit predict: the top-k classes of each image, with names and probabilities.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/utils.h>

#include <tlkit/core/error.h>
#include <tlkit/data/image_io.h>
#include <tlkit/data/transforms.h>
#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/build.h>

#include "command.h"
#include "run_options.h"

namespace {

using namespace tlkit;
namespace fs = std::filesystem;

int run_predict(int argc, char** argv) {
  cxxopts::Options options("tlkit predict",
                           "Top-k class predictions for image files (or every image in a folder)");
  options.add_options()("model", "a TorchScript classifier (e.g. RUN/model.pt)",
                        cxxopts::value<std::string>())(
      "k,top", "how many classes to show", cxxopts::value<std::int64_t>()->default_value("5"))(
      "images", "image files or folders of them", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"images"});
  options.positional_help("IMAGE|FOLDER...");
  cli::add_preprocess_options(options);
  cli::add_common_options(options);
  cxxopts::ParseResult result;
  if (!cli::parse(options, argc, argv,
                  "tlkit predict --model runs/photos/model.pt photo1.jpg photo2.png", result))
    return cli::kOk;
  const auto common = cli::apply_common(result);
  cli::require(result, {"model"});
  if (!result.count("images")) throw cli::UsageError("give at least one image file");
  const auto device = c10::Device(common.device);
  auto model = pipeline::load_model(result["model"].as<std::string>(),
                                    cli::preprocess_options(result), device);
  model.train(false);
  auto transform = pipeline::eval_transform(model);
  const auto k = std::min<std::int64_t>(result["top"].as<std::int64_t>(), model.num_classes());
  TLKIT_CHECK(k > 0, "--top must be positive");
  // Folders stand for the images in them (recursively, in name order).
  std::vector<std::string> files;
  for (const auto& given : result["images"].as<std::vector<std::string>>()) {
    std::error_code ec;
    if (!fs::is_directory(given, ec)) {
      files.push_back(given);
      continue;
    }
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(given, ec); !ec && it != fs::end(it);
         it.increment(ec))
      if (it->is_regular_file(ec) && data::is_image_file_name(it->path()) &&
          it->path().filename().string().front() != '.')
        found.push_back(it->path().string());
    TLKIT_CHECK(!found.empty(), "folder '", given, "' holds no images (", data::image_extensions(),
                ")");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  std::mt19937_64 rng(common.seed);
  torch::NoGradGuard no_grad;
  std::vector<std::string> failed;
  for (const auto& file : files) {
    at::Tensor image;
    try {
      image = data::read_image(file);
    } catch (const Error& e) {
      // One unreadable file does not cost the predictions for the others.
      std::fprintf(stderr, "tlkit predict: skipping '%s': %s\n", file.c_str(), e.what());
      failed.push_back(file);
      continue;
    }
    auto input = (*transform)(image, rng).unsqueeze(0).to(device);
    auto probabilities = at::softmax(model.forward(input), 1)[0].cpu();
    TLKIT_CHECK(probabilities.isfinite().all().item<bool>(), "the model's outputs for '", file,
                "' are not finite (NaN/Inf): no prediction can be made from them");
    auto [values, indices] = probabilities.topk(k);
    std::printf("%s\n", file.c_str());
    for (std::int64_t i = 0; i < k; ++i) {
      const auto index = indices[i].item<std::int64_t>();
      const std::string name = index < static_cast<std::int64_t>(model.class_names().size())
                                   ? model.class_names()[static_cast<size_t>(index)]
                                   : std::to_string(index);
      std::printf("  %2lld. %-24s %6.2f%%\n", static_cast<long long>(i + 1), name.c_str(),
                  100 * values[i].item<double>());
    }
  }
  cli::check_stdout("the predictions");
  TLKIT_CHECK(failed.empty(), failed.size(), " of ", files.size(),
              " images could not be read (listed above); the others were predicted");
  return cli::kOk;
}

TLKIT_REGISTER_COMMAND("predict", "top-k labels of image files", run_predict);

}  // namespace
