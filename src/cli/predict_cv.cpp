// tlkit predict: the top-k classes of each image, with names and probabilities; batched through
// the data loader's threads. Printed, or one row per image in a CSV / JSON file (--out) that a
// stopped run continues (--resume); an unreadable image is a row with its error. --tta averages
// the softmax over views of each image.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <tlkit/core/error.h>
#include <tlkit/core/interrupt.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/image_list.h>
#include <tlkit/data/loader.h>
#include <tlkit/model/classifier.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/predictions.h>
#include <tlkit/pipeline/tta.h>
#include <tlkit/train/tta_network.h>

#include "command.h"
#include "run_options.h"
#include "tta_options.h"

namespace {

using namespace tlkit;
namespace fs = std::filesystem;

// One batch's rows, in the batch's order; an image the list could not read gets its error.
std::vector<pipeline::PredictionRow> batch_rows(model::Classifier& model,
                                                const data::ImageList& images,
                                                const data::ImageBatch& batch, std::int64_t k,
                                                const c10::Device& device) {
  // [B, V, C, H, W] with test-time augmentation: the mean of the views' softmax.
  auto probabilities =
      batch.images.dim() == 5
          ? train::mean_softmax_over_views(batch.images.to(device),
                                           [&](const at::Tensor& x) { return model.forward(x); })
                .exp()
                .cpu()
          : at::softmax(model.forward(batch.images.to(device)), 1).cpu();
  std::vector<pipeline::PredictionRow> rows;
  const auto& names = model.class_names();
  for (size_t i = 0; i < batch.indices.size(); ++i) {
    pipeline::PredictionRow row;
    row.path = images.file(batch.indices[i]).string();
    row.error = images.error(batch.indices[i]);
    if (row.error.empty()) {
      const auto p = probabilities[static_cast<std::int64_t>(i)];
      TLKIT_CHECK(p.isfinite().all().item<bool>(), "the model's outputs for '", row.path,
                  "' are not finite (NaN/Inf): no prediction can be made from them");
      const auto [values, indices] = p.topk(k);
      for (std::int64_t j = 0; j < k; ++j) {
        const auto index = indices[j].item<std::int64_t>();
        row.labels.push_back(index < static_cast<std::int64_t>(names.size())
                                 ? names[static_cast<size_t>(index)]
                                 : std::to_string(index));
        row.probabilities.push_back(values[j].item<double>());
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

void print_rows(const std::vector<pipeline::PredictionRow>& rows) {
  for (const auto& row : rows) {
    if (!row.error.empty()) {
      // One unreadable file does not cost the predictions for the others.
      std::fprintf(stderr, "tlkit predict: skipping '%s': %s\n", row.path.c_str(),
                   row.error.c_str());
      continue;
    }
    std::printf("%s\n", row.path.c_str());
    for (size_t i = 0; i < row.labels.size(); ++i)
      std::printf("  %2zu. %-24s %6.2f%%\n", i + 1, row.labels[i].c_str(),
                  100 * row.probabilities[i]);
  }
}

int run_predict(int argc, char** argv) {
  cxxopts::Options options("tlkit predict",
                           "Top-k class predictions for image files (or every image in a folder, "
                           "recursively), printed or written to a CSV / JSON file");
  options.add_options()("model", "a TorchScript classifier (e.g. RUN/model.pt)",
                        cxxopts::value<std::string>())(
      "k,top", "how many classes per image (at most the number of classes)",
      cxxopts::value<std::int64_t>()->default_value("5"))(
      "out", "write one row per image to FILE.csv or FILE.json (path, top-k labels and "
      "probabilities, error) instead of printing", cxxopts::value<std::string>())(
      "resume", "continue --out FILE: skip the images it already has a row for")(
      "batch-size", "images per forward pass", cxxopts::value<size_t>()->default_value("64"))(
      "workers", "decoding threads", cxxopts::value<size_t>()->default_value("2"))(
      "images", "image files or folders of them", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"images"});
  options.positional_help("IMAGE|FOLDER...");
  cli::add_preprocess_options(options);
  cli::add_tta_option(options);
  cli::add_common_options(options);
  cxxopts::ParseResult result;
  if (!cli::parse(options, argc, argv,
                  "tlkit predict --model runs/photos/model.pt new_photos/ --out preds.csv",
                  result))
    return cli::kOk;
  const auto common = cli::apply_common(result);
  cli::require(result, {"model"});
  if (!result.count("images")) throw cli::UsageError("give at least one image file or folder");
  const bool to_file = result.count("out") > 0;
  if (result.count("resume") && !to_file) throw cli::UsageError("--resume needs --out FILE");
  if (to_file && !result.count("resume") && fs::exists(result["out"].as<std::string>()))
    throw cli::UsageError("'" + result["out"].as<std::string>() +
                          "' exists: continue it with --resume, or remove it");
  if (result["top"].as<std::int64_t>() < 1) throw cli::UsageError("--top must be at least 1");
  const auto tta = cli::tta_option(result);
  if (result["batch-size"].as<size_t>() < 1)
    throw cli::UsageError("--batch-size must be at least 1");
  const auto device = c10::Device(common.device);
  auto model = pipeline::load_model(result["model"].as<std::string>(),
                                    cli::preprocess_options(result), device);
  model.train(false);
  const auto k = std::min<std::int64_t>(result["top"].as<std::int64_t>(), model.num_classes());
  if (k < result["top"].as<std::int64_t>())
    logger()->info("--top {} is more than the model's {} classes: {} per image",
                   result["top"].as<std::int64_t>(), model.num_classes(), k);
  auto files = data::find_images(result["images"].as<std::vector<std::string>>());
  const auto total = files.size();
  std::unique_ptr<pipeline::PredictionWriter> writer;
  if (to_file) {
    install_interrupt_handlers();  // Ctrl-C: stop between batches, the rows written are kept
    writer = std::make_unique<pipeline::PredictionWriter>(result["out"].as<std::string>(), k,
                                                          result.count("resume") > 0);
    const auto& done = writer->done();
    files.erase(std::remove_if(files.begin(), files.end(),
                               [&](const fs::path& f) { return done.count(f.string()) > 0; }),
                files.end());
    if (!done.empty())
      logger()->info("resuming: {} of {} images already have a row in {}", total - files.size(),
                     total, result["out"].as<std::string>());
  }
  size_t failed = 0;
  if (!files.empty()) {
    auto images = std::make_shared<data::ImageList>(std::move(files));
    data::LoaderOptions loading;
    loading.batch_size = result["batch-size"].as<size_t>();
    loading.shuffle = false;
    loading.workers = result["workers"].as<size_t>();
    loading.skip_unreadable = false;  // the list never throws: a bad file is its error row
    data::DataLoader loader(images, pipeline::tta_transform(model, tta), loading);
    torch::NoGradGuard no_grad;
    for (auto& batch : loader) {
      const auto rows = batch_rows(model, *images, batch, k, device);
      failed += static_cast<size_t>(std::count_if(
          rows.begin(), rows.end(), [](const auto& row) { return !row.error.empty(); }));
      if (writer) {
        writer->append(rows);
        throw_if_interrupted("predicting (the rows written are kept: continue with --resume)");
      } else {
        print_rows(rows);
      }
    }
  }
  if (writer) {
    writer->finish();
    logger()->info("{} rows in {}{}", total, result["out"].as<std::string>(),
                   failed ? fmt::format(" ({} of {} images could not be read: their error "
                                        "column says why)", failed, total)
                          : std::string());
    return cli::kOk;
  }
  cli::check_stdout("the predictions");
  TLKIT_CHECK(failed == 0, failed, " of ", total,
              " images could not be read (listed above); the others were predicted");
  return cli::kOk;
}

TLKIT_REGISTER_COMMAND("predict", "top-k labels of image files, printed or to CSV/JSON",
                       run_predict);

}  // namespace
