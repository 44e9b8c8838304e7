#include <tlkit/core/pictures.h>

#include <algorithm>
#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>

namespace tlkit {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kNameScale = 0.45;
constexpr double kTitleScale = 0.6;
const cv::Scalar kBlack(0, 0, 0);
const cv::Scalar kWhite(255, 255, 255);
// The dark end of the heat map, matplotlib's "Blues" (8, 48, 107), in RGB.
const double kDark[3] = {8, 48, 107};

cv::Size text_size(const std::string& text, double scale) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, 1, &baseline);
}

// Draws `text` with its top-left corner at (x, y) and records it.
void put(cv::Mat& img, PictureLayout& layout, const std::string& text, int x, int y, double scale,
         const cv::Scalar& colour = kBlack) {
  const auto size = text_size(text, scale);
  cv::putText(img, text, cv::Point(x, y + size.height), kFont, scale, colour, 1, cv::LINE_AA);
  layout.labels.push_back({text, {x, y, size.width, size.height}});
}

// `text` turned 90 degrees (reading upwards), its bottom-left corner at (x, bottom).
void put_vertical(cv::Mat& img, PictureLayout& layout, const std::string& text, int x, int bottom,
                  double scale) {
  const auto size = text_size(text, scale);
  cv::Mat strip(size.height + 6, size.width + 2, CV_8UC3, kWhite);
  cv::putText(strip, text, cv::Point(1, size.height + 1), kFont, scale, kBlack, 1, cv::LINE_AA);
  cv::Mat turned;
  cv::rotate(strip, turned, cv::ROTATE_90_COUNTERCLOCKWISE);
  const cv::Rect target(x, bottom - turned.rows, turned.cols, turned.rows);
  const cv::Rect inside = target & cv::Rect(0, 0, img.cols, img.rows);
  if (inside.area() > 0)
    turned(cv::Rect(inside.x - target.x, inside.y - target.y, inside.width, inside.height))
        .copyTo(img(inside));
  layout.labels.push_back({text, {target.x, target.y, target.width, target.height}});
}

PlotImage to_rgb(const cv::Mat& bgr) {
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  PlotImage image;
  image.width = rgb.cols;
  image.height = rgb.rows;
  image.rgb.assign(rgb.data, rgb.data + rgb.total() * rgb.elemSize());
  return image;
}

}  // namespace

PictureLayout render_confusion_matrix(const std::vector<std::vector<double>>& fractions,
                                      const std::vector<std::vector<std::int64_t>>& counts,
                                      const std::vector<std::string>& class_names,
                                      const std::string& title) {
  const auto n = static_cast<int>(fractions.size());
  TLKIT_CHECK(n > 0 && n <= 4096, "a confusion matrix needs 1..4096 classes, got ", n);
  TLKIT_CHECK(counts.size() == fractions.size() && class_names.size() == fractions.size(),
              "the confusion matrix has ", n, " rows but ", counts.size(), " count rows and ",
              class_names.size(), " class names");
  for (int i = 0; i < n; ++i)
    TLKIT_CHECK(fractions[i].size() == fractions.size() && counts[i].size() == fractions.size(),
                "row ", i, " of the confusion matrix does not have ", n, " columns");
  const int cell = std::clamp(640 / n, 4, 48);
  const bool named = cell >= 8;
  const double name_scale = std::min(kNameScale, cell / 30.0);
  int name_width = 0;
  if (named)
    for (const auto& name : class_names)
      name_width = std::max(name_width, text_size(name, name_scale).width);
  const int axis_text = 22;  // "true" / "predicted"
  const int left = axis_text + name_width + 8, top = 44;
  const int grid = n * cell;
  const int width = std::max({left + grid + 20, 260, text_size(title, kTitleScale).width + 20});
  const int height = top + grid + name_width + 8 + axis_text + 8;
  PictureLayout layout;
  try {
    cv::Mat img(height, width, CV_8UC3, kWhite);
    put(img, layout, title, 10, 12, kTitleScale);
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) {
        const double f =
            std::clamp(std::isfinite(fractions[i][j]) ? fractions[i][j] : 0.0, 0.0, 1.0);
        // colour = white + f * (dark - white), per channel (BGR for OpenCV)
        const cv::Scalar colour(255 + f * (kDark[2] - 255), 255 + f * (kDark[1] - 255),
                                255 + f * (kDark[0] - 255));
        const PlotBox box{left + j * cell, top + i * cell, cell, cell};
        cv::rectangle(img, cv::Rect(box.x, box.y, cell, cell), colour, cv::FILLED);
        layout.cells.push_back(box);
        const auto count = std::to_string(counts[i][j]);
        const double count_scale = std::min(0.4, cell / 40.0);
        const auto size = text_size(count, count_scale);
        if (cell >= 20 && size.width + 2 <= cell)
          put(img, layout, count, box.x + (cell - size.width) / 2, box.y + (cell - size.height) / 2,
              count_scale, f > 0.5 ? kWhite : kBlack);
      }
    }
    cv::rectangle(img, cv::Rect(left, top, grid, grid), kBlack, 1);
    if (named) {
      for (int i = 0; i < n; ++i) {
        const auto size = text_size(class_names[i], name_scale);
        put(img, layout, class_names[i], left - 6 - size.width,
            top + i * cell + (cell - size.height) / 2, name_scale);
        put_vertical(img, layout, class_names[i], left + i * cell + (cell - size.height) / 2 - 3,
                     top + grid + 6 + size.width, name_scale);
      }
    }
    put_vertical(img, layout, "true class", 2, top + grid / 2 + 40, kNameScale);
    put(img, layout, "predicted class", left + grid / 2 - 60, height - axis_text, kNameScale);
    layout.image = to_rgb(img);
  } catch (const cv::Exception& e) {
    fail("drawing the confusion matrix failed in OpenCV: ", e.what());
  }
  return layout;
}

PictureLayout render_contact_sheet(const std::vector<SheetImage>& images, const std::string& title,
                                   int columns, int tile) {
  TLKIT_CHECK(columns >= 1 && tile >= 16 && tile <= 1024, "a contact sheet needs at least one ",
              "column and tiles of 16..1024 pixels, got ", columns, " columns of ", tile);
  size_t lines = 0;
  for (const auto& image : images) lines = std::max(lines, image.caption.size());
  constexpr double kCaptionScale = 0.42;
  const int line_height = text_size("Ag", kCaptionScale).height + 6;
  const int pad = 8, top = 40;
  const int cell_w = tile + pad, cell_h = tile + 4 + static_cast<int>(lines) * line_height + pad;
  const int used_columns = std::max(1, std::min(columns, static_cast<int>(images.size())));
  const int rows = (static_cast<int>(images.size()) + columns - 1) / columns;
  const int width =
      std::max({pad + used_columns * cell_w, 320, text_size(title, kTitleScale).width + 20});
  const int height = top + std::max(rows, 1) * cell_h + pad;
  PictureLayout layout;
  try {
    cv::Mat img(height, width, CV_8UC3, kWhite);
    put(img, layout, title, 10, 12, kTitleScale);
    if (images.empty()) put(img, layout, "no image to show", pad, top + 10, kCaptionScale);
    for (size_t k = 0; k < images.size(); ++k) {
      const auto& picture = images[k].image;
      TLKIT_CHECK(picture.width > 0 && picture.height > 0 &&
                      picture.rgb.size() == static_cast<size_t>(picture.width) * picture.height * 3,
                  "contact sheet image ", k, " is not a ", picture.width, "x", picture.height,
                  " RGB image");
      const int x = pad + static_cast<int>(k % columns) * cell_w;
      const int y = top + static_cast<int>(k / columns) * cell_h;
      cv::Mat rgb(picture.height, picture.width, CV_8UC3,
                  const_cast<std::uint8_t*>(picture.rgb.data()));
      cv::Mat bgr;
      cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
      const double scale = std::min(static_cast<double>(tile) / picture.width,
                                    static_cast<double>(tile) / picture.height);
      const int w = std::max(1, static_cast<int>(std::lround(picture.width * scale)));
      const int h = std::max(1, static_cast<int>(std::lround(picture.height * scale)));
      cv::Mat scaled;
      cv::resize(bgr, scaled, cv::Size(w, h), 0, 0,
                 scale >= 1 ? cv::INTER_NEAREST : cv::INTER_AREA);
      const PlotBox box{x + (tile - w) / 2, y + (tile - h) / 2, w, h};
      scaled.copyTo(img(cv::Rect(box.x, box.y, w, h)));
      layout.cells.push_back(box);
      for (size_t l = 0; l < images[k].caption.size(); ++l) {
        auto text = images[k].caption[l];
        while (text.size() > 3 && text_size(text, kCaptionScale).width > tile)
          text = text.substr(0, text.size() - 4) + "..";
        put(img, layout, text, x, y + tile + 4 + static_cast<int>(l) * line_height, kCaptionScale);
      }
    }
    layout.image = to_rgb(img);
  } catch (const cv::Exception& e) {
    fail("drawing the contact sheet failed in OpenCV: ", e.what());
  }
  return layout;
}

void write_png(const std::filesystem::path& path, const PlotImage& image) {
  std::vector<std::uint8_t> bytes;
  try {
    cv::Mat rgb(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.rgb.data()));
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    TLKIT_CHECK(cv::imencode(".png", bgr, bytes, {cv::IMWRITE_PNG_COMPRESSION, 9}),
                "OpenCV could not encode '", path.string(), "' as PNG");
  } catch (const cv::Exception& e) {
    fail("encoding '", path.string(), "' as PNG failed in OpenCV: ", e.what());
  }
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace tlkit
