#pragma once
// The pictures and lists of what a model gets wrong on an evaluated split, written into a folder:
//   confusion_matrix.png  the row-normalised confusion matrix, class names on both axes
//   top_losses.png        the wrong predictions with the largest loss, as a contact sheet: each
//                         image with its true class, the predicted class and its probability
// and the most confused pairs of classes as text (for the terminal and results.md).

#include <filesystem>
#include <string>
#include <vector>

#include <tlkit/data/dataset.h>
#include <tlkit/train/interpretation.h>
#include <tlkit/train/metrics.h>

namespace tlkit::pipeline {

inline constexpr size_t kTopLossImages = 16;  // images on the contact sheet

struct Interpretation {
  std::vector<train::ConfusedPair> confused;  // most confused first
  std::vector<train::TopLoss> top_losses;     // largest loss first
  std::vector<std::filesystem::path> files;   // the PNGs written (none without OpenCV)
};

// Writes the pictures into `dir` (created). `outcomes` and `dataset` (the evaluated one, whose
// images the outcomes index) give the top losses; without them only the confusion matrix is
// drawn. A picture that cannot be drawn is logged and left out, not an error.
Interpretation write_interpretation(const std::filesystem::path& dir,
                                    const train::Evaluation& evaluation,
                                    const std::vector<std::string>& class_names,
                                    const train::ExampleOutcomes* outcomes = nullptr,
                                    const data::Dataset* dataset = nullptr,
                                    size_t top_count = kTopLossImages);

// "most confused (true -> predicted):\n  b -> a: 3 images (30.0% of b)\n..." for the terminal.
std::string format_interpretation(const Interpretation& interpretation,
                                  const train::Evaluation& evaluation,
                                  const std::vector<std::string>& class_names);

// The same as a Markdown section for results.md, with links to the pictures.
std::string interpretation_markdown(const Interpretation& interpretation,
                                    const train::Evaluation& evaluation,
                                    const std::vector<std::string>& class_names);

}  // namespace tlkit::pipeline
