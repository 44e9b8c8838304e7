#include <tlkit/pipeline/interpretation.h>

#include <algorithm>

#include <ATen/ATen.h>
#include <spdlog/fmt/fmt.h>

#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/pictures.h>

namespace tlkit::pipeline {
namespace {

std::string name_of(const std::vector<std::string>& names, std::int64_t c) {
  return c >= 0 && c < static_cast<std::int64_t>(names.size()) ? names[static_cast<size_t>(c)]
                                                               : std::to_string(c);
}

#if defined(TLKIT_WITH_OPENCV)
void draw_confusion(const std::filesystem::path& file, const train::Evaluation& evaluation,
                    const std::vector<std::string>& class_names) {
  const auto fractions = train::row_normalised(evaluation.confusion).contiguous();
  const auto counts = evaluation.confusion.to(at::kCPU, at::kLong).contiguous();
  const auto n = fractions.size(0);
  std::vector<std::vector<double>> f(static_cast<size_t>(n));
  std::vector<std::vector<std::int64_t>> c(static_cast<size_t>(n));
  std::vector<std::string> names;
  for (std::int64_t i = 0; i < n; ++i) {
    f[i].assign(fractions.data_ptr<double>() + i * n, fractions.data_ptr<double>() + (i + 1) * n);
    c[i].assign(counts.data_ptr<std::int64_t>() + i * n,
                counts.data_ptr<std::int64_t>() + (i + 1) * n);
    names.push_back(name_of(class_names, i));
  }
  write_png(file, render_confusion_matrix(f, c, names,
                                          "confusion matrix (each row: shares of the true class)")
                      .image);
}

// The image as RGB (grey repeated), for the contact sheet.
PlotImage sheet_image(const at::Tensor& hwc) {
  auto image = hwc.to(at::kByte).contiguous();
  TLKIT_CHECK(image.dim() == 3 && (image.size(2) == 1 || image.size(2) == 3),
              "an image to show is H x W x 1 or 3, got ", image.sizes());
  if (image.size(2) == 1) image = image.expand({image.size(0), image.size(1), 3}).contiguous();
  PlotImage result;
  result.height = static_cast<int>(image.size(0));
  result.width = static_cast<int>(image.size(1));
  result.rgb.assign(image.data_ptr<std::uint8_t>(), image.data_ptr<std::uint8_t>() + image.numel());
  return result;
}

void draw_top_losses(const std::filesystem::path& file, const std::vector<train::TopLoss>& losses,
                     const data::Dataset& dataset, const std::vector<std::string>& class_names) {
  std::vector<SheetImage> images;
  for (const auto& loss : losses) {
    TLKIT_CHECK(loss.index >= 0 && static_cast<size_t>(loss.index) < dataset.size(),
                "top loss image ", loss.index, " is not in ", dataset.describe());
    SheetImage item;
    item.image = sheet_image(dataset.get(static_cast<size_t>(loss.index)).image);
    item.caption = {"true: " + name_of(class_names, loss.target),
                    fmt::format("pred: {} {:.1f}%", name_of(class_names, loss.predicted),
                                100 * loss.probability),
                    fmt::format("loss {:.2f}", loss.loss)};
    images.push_back(std::move(item));
  }
  write_png(file, render_contact_sheet(images, fmt::format("top losses: the {} most confidently "
                                                           "wrong images",
                                                           images.size()))
                      .image);
}
#endif

}  // namespace

Interpretation write_interpretation(const std::filesystem::path& dir,
                                    const train::Evaluation& evaluation,
                                    const std::vector<std::string>& class_names,
                                    const train::ExampleOutcomes* outcomes,
                                    const data::Dataset* dataset, size_t top_count) {
  Interpretation result;
  if (!evaluation.confusion.defined() || evaluation.examples == 0) return result;
  result.confused = train::most_confused(evaluation.confusion);
  const bool images_known = outcomes && dataset && outcomes->size() > 0 &&
                            std::all_of(outcomes->index.begin(), outcomes->index.end(),
                                        [](std::int64_t i) { return i >= 0; });
  if (images_known) result.top_losses = train::top_losses(*outcomes, top_count);
#if defined(TLKIT_WITH_OPENCV)
  std::filesystem::create_directories(dir);
  const auto draw = [&](const std::string& name, const auto& how) {
    try {
      how(dir / name);
      result.files.push_back(dir / name);
    } catch (const std::exception& e) {
      logger()->warn("could not draw {}: {}", (dir / name).string(), e.what());
    }
  };
  draw("confusion_matrix.png",
       [&](const std::filesystem::path& file) { draw_confusion(file, evaluation, class_names); });
  if (images_known)
    draw("top_losses.png", [&](const std::filesystem::path& file) {
      draw_top_losses(file, result.top_losses, *dataset, class_names);
    });
#else
  (void)dir;
  logger()->info("built without OpenCV: no confusion matrix or top-loss pictures");
#endif
  return result;
}

std::string format_interpretation(const Interpretation& interpretation,
                                  const train::Evaluation& evaluation,
                                  const std::vector<std::string>& class_names) {
  std::string out = "most confused (true -> predicted):\n";
  if (!evaluation.confusion.defined()) return out + "  (no evaluation)\n";
  out += train::format_most_confused(interpretation.confused, evaluation.confusion, class_names);
  for (const auto& file : interpretation.files) out += "wrote " + file.string() + "\n";
  return out;
}

std::string interpretation_markdown(const Interpretation& interpretation,
                                    const train::Evaluation& evaluation,
                                    const std::vector<std::string>& class_names) {
  std::string out = "\n### Most confused classes (true -> predicted)\n\n";
  if (!evaluation.confusion.defined()) return out + "(no evaluation)\n";
  if (interpretation.confused.empty()) out += "None: every image is classified correctly.\n";
  const auto totals = evaluation.confusion.to(at::kCPU, at::kLong).sum(1);
  for (size_t i = 0; i < interpretation.confused.size() && i < 10; ++i) {
    const auto& p = interpretation.confused[i];
    const auto total = totals[p.actual].item<std::int64_t>();
    out += fmt::format("- {} -> {}: {} of {} images\n", name_of(class_names, p.actual),
                       name_of(class_names, p.predicted), p.count, total);
  }
  for (const auto& file : interpretation.files)
    out += fmt::format("\n![{}]({})\n", file.stem().string(), file.filename().string());
  return out;
}

}  // namespace tlkit::pipeline
