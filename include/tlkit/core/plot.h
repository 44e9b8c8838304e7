#pragma once
// Small PNG line plots (learning curves, learning-rate schedules, LR-range tests, benchmark
// curves): several named series of (x, y), a title, axis labels, optional log-x / log-y axes with
// decade ticks, a legend, drawn with OpenCV and written atomically.
//
// Points that cannot be drawn (NaN / Inf, or <= 0 on a log axis) are skipped and break the line
// there. Available when tlkit is built with OpenCV (TLKIT_WITH_OPENCV, the default).
//
//   tlkit::write_line_plot("curves.png", {{"train", epochs, train_loss}, {"val", epochs,
//   val_loss}},
//                          tlkit::PlotOptions{}.with_title("loss").with_labels("epoch", "loss"));

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace tlkit {

struct PlotSeries {
  PlotSeries() = default;
  PlotSeries(std::string name_, std::vector<double> x_, std::vector<double> y_,
             std::vector<double> lower_ = {}, std::vector<double> upper_ = {})
      : name(std::move(name_)),
        x(std::move(x_)),
        y(std::move(y_)),
        lower(std::move(lower_)),
        upper(std::move(upper_)) {}
  std::string name;  // shown in the legend; empty = not listed
  std::vector<double> x;
  std::vector<double> y;
  // Optional band (e.g. mean +- std): when both have y's length, the area between them is shaded
  // in the series' colour.
  std::vector<double> lower;
  std::vector<double> upper;
};

struct PlotOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  bool log_y = false;
  bool legend = true;
  int width = 800;   // pixels, 160..8192
  int height = 480;  // pixels, 120..8192

  PlotOptions& with_title(std::string text) {
    title = std::move(text);
    return *this;
  }
  PlotOptions& with_labels(std::string x, std::string y) {
    x_label = std::move(x);
    y_label = std::move(y);
    return *this;
  }
  PlotOptions& with_log(bool x, bool y) {
    log_x = x;
    log_y = y;
    return *this;
  }
};

// An 8-bit RGB image, row-major, width * height * 3 bytes.
struct PlotImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;
};

#if defined(TLKIT_WITH_OPENCV)
// Draws the plot. Throws tlkit::Error when there is no series, a series has x and y of different
// lengths, no point can be drawn, or the size is out of range.
PlotImage render_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options = {});

// The plot as PNG bytes (e.g. for a TensorBoard image summary).
std::string encode_line_plot_png(const std::vector<PlotSeries>& series,
                                 const PlotOptions& options = {});

// Writes the plot as a PNG file, atomically (parent folders are created).
void write_line_plot(const std::filesystem::path& path, const std::vector<PlotSeries>& series,
                     const PlotOptions& options = {});
#endif

}  // namespace tlkit
