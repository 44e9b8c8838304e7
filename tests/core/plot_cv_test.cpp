#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/plot.h>

#include <cmath>
#include <cstdlib>

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace fs = std::filesystem;

namespace {

struct Rgb {
  int r, g, b;
};
constexpr Rgb kBlue{31, 119, 180};    // first series (tab10)
constexpr Rgb kOrange{255, 127, 14};  // second series

bool near(const tlkit::PlotImage& img, int x, int y, Rgb c, int tolerance = 40) {
  const auto* p = &img.rgb[(static_cast<std::size_t>(y) * img.width + x) * 3];
  return std::abs(p[0] - c.r) + std::abs(p[1] - c.g) + std::abs(p[2] - c.b) <= tolerance;
}

// Mean row of the pixels of colour c (or -1 when there are none).
double mean_row(const tlkit::PlotImage& img, Rgb c, int* count = nullptr) {
  double sum = 0;
  int n = 0;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      if (near(img, x, y, c)) {
        sum += y;
        ++n;
      }
    }
  }
  if (count) *count = n;
  return n ? sum / n : -1;
}

std::uint32_t big_endian(const std::string& bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

std::vector<tlkit::PlotSeries> two_lines() {
  std::vector<double> x, low, high;
  for (int i = 0; i <= 50; ++i) {
    x.push_back(i);
    low.push_back(1.0);
    high.push_back(2.0 + 0.01 * i);
  }
  return {{"low", x, low}, {"high", x, high}};
}

TEST(Plot, DrawsEachSeriesInItsColourAtItsHeight) {
  const auto img = tlkit::render_line_plot(
      two_lines(), tlkit::PlotOptions{}.with_title("t").with_labels("x", "y"));
  ASSERT_EQ(img.width, 800);
  ASSERT_EQ(img.height, 480);
  ASSERT_EQ(img.rgb.size(), 800u * 480u * 3u);
  EXPECT_TRUE(near(img, 0, 0, {255, 255, 255}, 0));  // white background
  int blue = 0, orange = 0;
  const double blue_row = mean_row(img, kBlue, &blue);
  const double orange_row = mean_row(img, kOrange, &orange);
  EXPECT_GT(blue, 300);  // a line ~700 px long, 2 px wide (plus the legend sample)
  EXPECT_GT(orange, 300);
  EXPECT_GT(blue_row, orange_row + 50) << "y = 1 must be drawn below y = 2";
}

TEST(Plot, LogAxisSkipsPointsItCannotShow) {
  std::vector<double> x, y;
  for (int i = 0; i < 40; ++i) {
    x.push_back(i);
    y.push_back(i % 10 == 0 ? 0.0 : std::pow(10.0, -i / 10.0));  // zeros cannot be drawn on log-y
  }
  y[5] = NAN;
  const auto img =
      tlkit::render_line_plot({{"lr", x, y}}, tlkit::PlotOptions{}.with_log(false, true));
  int blue = 0;
  mean_row(img, kBlue, &blue);
  EXPECT_GT(blue, 200);
  EXPECT_THROW(tlkit::render_line_plot({{"zero", {1, 2}, {0, 0}}},
                                       tlkit::PlotOptions{}.with_log(false, true)),
               tlkit::Error);
}

TEST(Plot, FlatAndSinglePointSeriesAreDrawn) {
  const auto flat = tlkit::render_line_plot({{"flat", {0, 1, 2}, {0.5, 0.5, 0.5}}});
  int blue = 0;
  mean_row(flat, kBlue, &blue);
  EXPECT_GT(blue, 100);
  const auto dot =
      tlkit::render_line_plot({{"", {3}, {7}}}, tlkit::PlotOptions{}.with_log(true, true));
  mean_row(dot, kBlue, &blue);
  EXPECT_GT(blue, 10);
}

TEST(Plot, BadInputIsAClearError) {
  EXPECT_THROW(tlkit::render_line_plot({}), tlkit::Error);
  try {
    tlkit::render_line_plot({{"bad", {1, 2, 3}, {1, 2}}});
    FAIL() << "expected tlkit::Error";
  } catch (const tlkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'bad' has 3 x values but 2 y values"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(tlkit::render_line_plot({{"nan", {NAN}, {1}}}), tlkit::Error);
  tlkit::PlotOptions tiny;
  tiny.width = 10;
  EXPECT_THROW(tlkit::render_line_plot(two_lines(), tiny), tlkit::Error);
}

TEST(Plot, WritesAPngAtomically) {
  tlkit::test::TempDir dir;
  const auto path = dir / "plots" / "curves.png";
  tlkit::PlotOptions options;
  options.width = 640;
  options.height = 360;
  tlkit::write_line_plot(path, two_lines(), options);
  const auto bytes = tlkit::read_file(path);
  ASSERT_GT(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(big_endian(bytes, 16), 640u);
  EXPECT_EQ(big_endian(bytes, 20), 360u);
  EXPECT_EQ(std::distance(fs::directory_iterator(path.parent_path()), fs::directory_iterator{}), 1);
  EXPECT_EQ(tlkit::encode_line_plot_png(two_lines(), options), bytes);
  EXPECT_THROW(tlkit::write_line_plot("/proc/tlkit_cannot_write/x.png", two_lines()), tlkit::Error);
}

}  // namespace
