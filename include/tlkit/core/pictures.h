#pragma once
// Pictures of what a classifier gets wrong, drawn with OpenCV:
//  - a confusion matrix as a heat map (rows: true class, columns: predicted class), each cell
//    shaded from white (0) to dark blue (1) by its row-normalised value, with its image count
//    written in it when the cells are large enough and the class names along both axes;
//  - a contact sheet: images in a grid, each with caption lines under it (e.g. the top losses:
//    true class, predicted class, probability).
// Available when tlkit is built with OpenCV (TLKIT_WITH_OPENCV, the default).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <tlkit/core/plot.h>

namespace tlkit {

struct PlotBox {
  int x = 0, y = 0, width = 0, height = 0;
};

// A text drawn into a picture, and where.
struct PlotLabel {
  std::string text;
  PlotBox box;
};

// The picture and where its parts are (for tests and for pointing at a cell).
struct PictureLayout {
  PlotImage image;
  std::vector<PlotBox> cells;     // confusion matrix: row-major, C x C; contact sheet: the tiles
  std::vector<PlotLabel> labels;  // every text drawn (class names, counts, captions, title)
};

#if defined(TLKIT_WITH_OPENCV)
// `fractions` C x C in [0, 1] (rows: true class), `counts` C x C (written in the cells), C class
// names. Names are left out when the cells are too small to label (more than ~80 classes).
// Throws tlkit::Error when the sizes disagree.
PictureLayout render_confusion_matrix(const std::vector<std::vector<double>>& fractions,
                                      const std::vector<std::vector<std::int64_t>>& counts,
                                      const std::vector<std::string>& class_names,
                                      const std::string& title = "confusion matrix");

struct SheetImage {
  PlotImage image;                   // RGB (grey images given as RGB)
  std::vector<std::string> caption;  // lines under the image (cut to the tile's width)
};

// The images in rows of `columns` tiles; each image scaled to fit tile x tile pixels (enlarged
// without smoothing so that small images stay sharp), keeping its aspect ratio.
PictureLayout render_contact_sheet(const std::vector<SheetImage>& images, const std::string& title,
                                   int columns = 4, int tile = 160);

// Writes a picture as a PNG file, atomically (parent folders are created).
void write_png(const std::filesystem::path& path, const PlotImage& image);
#endif

}  // namespace tlkit
