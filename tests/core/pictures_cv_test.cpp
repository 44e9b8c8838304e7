// The confusion-matrix heat map and the contact sheet: sizes, where the class names and captions
// are drawn, darker cells for larger values, and the PNG files.
#include <algorithm>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/error.h>
#include <tlkit/core/pictures.h>
#include <tlkit/data/image_io.h>

#include "support/test_support.h"

namespace {

// The sum of R, G and B at (x, y).
int brightness(const tlkit::PlotImage& image, int x, int y) {
  const auto* p = &image.rgb[(static_cast<size_t>(y) * image.width + x) * 3];
  return p[0] + p[1] + p[2];
}

size_t times_drawn(const tlkit::PictureLayout& layout, const std::string& text) {
  return static_cast<size_t>(std::count_if(layout.labels.begin(), layout.labels.end(),
                                           [&](const auto& l) { return l.text == text; }));
}

TEST(Pictures, ConfusionCellsAreDarkerForLargerValuesAndNamesAreOnBothAxes) {
  const std::vector<std::string> names{"ant", "bumblebee", "cat"};
  const std::vector<std::vector<double>> fractions{
      {0.5, 0.5, 0.0}, {0.25, 0.0, 0.75}, {0.4, 0.0, 0.6}};
  const std::vector<std::vector<std::int64_t>> counts{{2, 2, 0}, {1, 0, 3}, {2, 0, 3}};
  const auto layout = tlkit::render_confusion_matrix(fractions, counts, names);
  const auto& image = layout.image;
  ASSERT_EQ(image.rgb.size(), static_cast<size_t>(image.width) * image.height * 3);
  EXPECT_GE(image.width, 200);
  EXPECT_GE(image.height, 150);
  ASSERT_EQ(layout.cells.size(), 9u);
  // A corner of each cell (the centre holds the count).
  const auto cell = [&](int row, int column) {
    const auto& box = layout.cells[static_cast<size_t>(row * 3 + column)];
    return brightness(image, box.x + 2, box.y + 2);
  };
  EXPECT_LT(cell(1, 2), cell(2, 2));                                                // 0.75 < 0.6
  EXPECT_LT(cell(2, 2), cell(0, 0));                                                // 0.6 < 0.5
  EXPECT_LT(cell(0, 0), cell(1, 0));                                                // 0.5 < 0.25
  EXPECT_LT(cell(1, 0), cell(2, 1));                                                // 0.25 < 0
  EXPECT_EQ(cell(2, 1), 3 * 255);                                                   // 0 is white
  for (const auto& name : names) EXPECT_EQ(times_drawn(layout, name), 2u) << name;  // rows, columns
  EXPECT_EQ(times_drawn(layout, "3"), 2u);                                          // the counts
  // The row names are left of the grid, the column names below it.
  const auto& grid_left = layout.cells.front();
  for (const auto& label : layout.labels) {
    if (label.text == "bumblebee") {
      EXPECT_TRUE(label.box.x + label.box.width <= grid_left.x ||
                  label.box.y >= layout.cells.back().y + layout.cells.back().height);
    }
  }

  tlkit::test::expect_error(
      [&] {
        tlkit::render_confusion_matrix(fractions, counts, {"ant", "bee"});
      },
      "3 rows but 3 count rows and 2 class names");
}

TEST(Pictures, ContactSheetTilesHoldTheImagesAndTheirCaptions) {
  std::vector<tlkit::SheetImage> images;
  for (int k = 0; k < 5; ++k) {
    tlkit::SheetImage item;
    item.image.width = 12 + k;
    item.image.height = 10;
    item.image.rgb.assign(static_cast<size_t>(item.image.width) * 10 * 3, 0);
    for (size_t i = 0; i < item.image.rgb.size(); i += 3) item.image.rgb[i] = 200;  // red
    item.caption = {"true: cat " + std::to_string(k), "pred: dog 93.0%"};
    images.push_back(item);
  }
  const auto layout = tlkit::render_contact_sheet(images, "top losses", 4, 160);
  ASSERT_EQ(layout.cells.size(), 5u);
  EXPECT_GT(layout.cells[4].y, layout.cells[0].y);  // the fifth starts a second row
  EXPECT_EQ(layout.cells[0].width, 160);            // 12 x 10 enlarged to fit 160 x 160
  for (const auto& box : layout.cells) {
    const auto* p =
        &layout.image.rgb[(static_cast<size_t>(box.y + box.height / 2) * layout.image.width +
                           box.x + box.width / 2) *
                          3];
    EXPECT_EQ(p[0], 200);
    EXPECT_EQ(p[1], 0);
  }
  for (int k = 0; k < 5; ++k) EXPECT_EQ(times_drawn(layout, "true: cat " + std::to_string(k)), 1u);
  EXPECT_EQ(times_drawn(layout, "pred: dog 93.0%"), 5u);
  EXPECT_EQ(times_drawn(layout, "top losses"), 1u);

  tlkit::test::TempDir dir;
  tlkit::write_png(dir / "sheet.png", layout.image);
  const auto read = tlkit::data::read_image(dir / "sheet.png");
  EXPECT_EQ(read.size(0), layout.image.height);
  EXPECT_EQ(read.size(1), layout.image.width);
  EXPECT_GT(std::filesystem::file_size(dir / "sheet.png"), 500u);
}

}  // namespace
