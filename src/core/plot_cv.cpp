#include <tlkit/core/plot.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>

namespace tlkit {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kTickScale = 0.42;
constexpr double kLabelScale = 0.5;
constexpr double kTitleScale = 0.6;
constexpr int kShift = 4;  // sub-pixel bits for anti-aliased polylines
const cv::Scalar kBlack(0, 0, 0);
const cv::Scalar kGrid(228, 228, 228);
const cv::Scalar kWhite(255, 255, 255);

// matplotlib's "tab10" colours, in OpenCV's BGR order.
const cv::Scalar kPalette[] = {{180, 119, 31},  {14, 127, 255}, {44, 160, 44},   {40, 39, 214},
                               {189, 103, 148}, {75, 86, 140},  {194, 119, 227}, {127, 127, 127},
                               {34, 189, 188},  {207, 190, 23}};

// One axis in drawing space (log10 of the values on a log axis).
struct Axis {
  double lo = 0;
  double hi = 1;
  bool log = false;
};

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }
double to_axis(double v, bool log) { return log ? std::log10(v) : v; }

bool point_usable(const PlotSeries& s, std::size_t i, const PlotOptions& o) {
  return usable(s.x[i], o.log_x) && usable(s.y[i], o.log_y);
}

void validate(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  TLKIT_CHECK(!series.empty(), "cannot plot: no series given");
  TLKIT_CHECK(o.width >= 160 && o.width <= 8192 && o.height >= 120 && o.height <= 8192,
              "plot size ", o.width, "x", o.height,
              " is out of range; use 160..8192 x 120..8192 pixels");
  bool any = false;
  for (const auto& s : series) {
    TLKIT_CHECK(s.x.size() == s.y.size(), "plot series '", s.name, "' has ", s.x.size(),
                " x values but ", s.y.size(), " y values");
    for (std::size_t i = 0; i < s.x.size() && !any; ++i) any = point_usable(s, i, o);
  }
  TLKIT_CHECK(any, "cannot plot: no point is finite",
              (o.log_x || o.log_y) ? " and positive on the log axis" : "", "; check the data");
}

Axis data_axis(const std::vector<PlotSeries>& series, const PlotOptions& o, bool x_axis) {
  Axis axis;
  axis.log = x_axis ? o.log_x : o.log_y;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!point_usable(s, i, o)) continue;
      const double v = to_axis(x_axis ? s.x[i] : s.y[i], axis.log);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      if (x_axis || s.lower.size() != s.x.size() || s.upper.size() != s.x.size()) continue;
      for (const double band : {s.lower[i], s.upper[i]}) {
        if (!usable(band, axis.log)) continue;
        lo = std::min(lo, to_axis(band, axis.log));
        hi = std::max(hi, to_axis(band, axis.log));
      }
    }
  }
  if (hi - lo <= 1e-12 * std::max(1.0, std::abs(hi))) {
    const double pad = axis.log ? 0.5 : (lo == 0 ? 1.0 : 0.1 * std::abs(lo));
    lo -= pad;
    hi += pad;
  } else if (!x_axis) {
    const double pad = 0.05 * (hi - lo);
    lo -= pad;
    hi += pad;
  }
  axis.lo = lo;
  axis.hi = hi;
  return axis;
}

double nice_step(double raw) {
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double m = raw / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

std::vector<double> linear_ticks(double lo, double hi) {
  const double step = nice_step((hi - lo) / 6);
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step); k * step <= hi + 1e-9 * step; k += 1)
    ticks.push_back(k * step);
  return ticks;
}

// Tick positions in axis space.
std::vector<double> axis_ticks(const Axis& a) {
  if (!a.log) return linear_ticks(a.lo, a.hi);
  std::vector<double> ticks;
  const double first = std::ceil(a.lo - 1e-9), last = std::floor(a.hi + 1e-9);
  const double every = std::max(1.0, std::ceil((last - first + 1) / 8));
  for (double d = first; d <= last; d += every) ticks.push_back(d);
  if (ticks.size() >= 2) return ticks;
  // Less than two decades visible: nice linear ticks of the values, placed on the log axis.
  ticks.clear();
  for (double v : linear_ticks(std::pow(10.0, a.lo), std::pow(10.0, a.hi))) {
    if (v > 0) ticks.push_back(std::log10(v));
  }
  return ticks;
}

std::string tick_label(double axis_value, bool log) {
  double v = log ? std::pow(10.0, axis_value) : axis_value;
  if (std::abs(v) < 1e-12 * (1 + std::abs(axis_value))) v = 0;
  char text[32];
  std::snprintf(text, sizeof(text), "%g", v);
  return text;
}

cv::Size text_size(const std::string& text, double scale) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, 1, &baseline);
}

void put_text(cv::Mat& img, const std::string& text, cv::Point origin, double scale,
              const cv::Scalar& color = kBlack) {
  cv::putText(img, text, origin, kFont, scale, color, 1, cv::LINE_AA);
}

struct Frame {
  cv::Rect area;
  Axis x, y;
  cv::Point2d map(double xv, double yv) const {
    const double px = area.x + (to_axis(xv, x.log) - x.lo) / (x.hi - x.lo) * area.width;
    const double py =
        area.y + area.height - (to_axis(yv, y.log) - y.lo) / (y.hi - y.lo) * area.height;
    return {px, py};
  }
};

Frame layout(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  Frame f;
  f.x = data_axis(series, o, true);
  f.y = data_axis(series, o, false);
  int label_width = 0;
  for (double t : axis_ticks(f.y))
    label_width = std::max(label_width, text_size(tick_label(t, f.y.log), kTickScale).width);
  const int left = label_width + 14 + (o.y_label.empty() ? 0 : 24);
  const int top = o.title.empty() ? 16 : 40;
  const int bottom = 30 + (o.x_label.empty() ? 0 : 24);
  const int right = 24;
  f.area = cv::Rect(left, top, std::max(40, o.width - left - right),
                    std::max(40, o.height - top - bottom));
  return f;
}

void draw_axes(cv::Mat& img, const Frame& f) {
  for (double t : axis_ticks(f.y)) {
    const int py = static_cast<int>(
        std::lround(f.area.y + f.area.height - (t - f.y.lo) / (f.y.hi - f.y.lo) * f.area.height));
    cv::line(img, {f.area.x, py}, {f.area.x + f.area.width, py}, kGrid, 1);
    const auto label = tick_label(t, f.y.log);
    const auto size = text_size(label, kTickScale);
    put_text(img, label, {f.area.x - size.width - 6, py + size.height / 2}, kTickScale);
  }
  for (double t : axis_ticks(f.x)) {
    const int px =
        static_cast<int>(std::lround(f.area.x + (t - f.x.lo) / (f.x.hi - f.x.lo) * f.area.width));
    cv::line(img, {px, f.area.y}, {px, f.area.y + f.area.height}, kGrid, 1);
    const auto label = tick_label(t, f.x.log);
    const auto size = text_size(label, kTickScale);
    put_text(img, label, {px - size.width / 2, f.area.y + f.area.height + size.height + 8},
             kTickScale);
  }
  cv::rectangle(img, f.area, kBlack, 1);
}

void draw_series(cv::Mat& img, const Frame& f, const PlotSeries& s, const PlotOptions& o,
                 const cv::Scalar& color) {
  std::vector<std::vector<cv::Point>> segments(1);
  const double scale = 1 << kShift;
  for (std::size_t i = 0; i < s.x.size(); ++i) {
    if (!point_usable(s, i, o)) {
      if (!segments.back().empty()) segments.emplace_back();
      continue;
    }
    const auto p = f.map(s.x[i], s.y[i]);
    segments.back().emplace_back(static_cast<int>(std::lround(p.x * scale)),
                                 static_cast<int>(std::lround(p.y * scale)));
  }
  for (const auto& segment : segments) {
    if (segment.size() == 1)
      cv::circle(img, segment[0], 3 << kShift, color, cv::FILLED, cv::LINE_AA, kShift);
  }
  segments.erase(std::remove_if(segments.begin(), segments.end(),
                                [](const auto& seg) { return seg.size() < 2; }),
                 segments.end());
  if (!segments.empty()) cv::polylines(img, segments, false, color, 2, cv::LINE_AA, kShift);
}

// The band between s.lower and s.upper, blended at 20% over what is drawn so far.
void draw_band(cv::Mat& img, const Frame& f, const PlotSeries& s, const PlotOptions& o,
               const cv::Scalar& color) {
  if (s.lower.size() != s.x.size() || s.upper.size() != s.x.size()) return;
  auto usable_at = [&](std::size_t i) {
    return usable(s.x[i], o.log_x) && usable(s.lower[i], o.log_y) && usable(s.upper[i], o.log_y);
  };
  cv::Mat overlay = img.clone();
  bool drawn = false;
  for (std::size_t i = 0; i < s.x.size();) {
    if (!usable_at(i)) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < s.x.size() && usable_at(end)) ++end;
    if (end - i >= 2) {
      std::vector<cv::Point> polygon;
      for (std::size_t k = i; k < end; ++k) {
        const auto p = f.map(s.x[k], s.upper[k]);
        polygon.emplace_back(static_cast<int>(std::lround(p.x)),
                             static_cast<int>(std::lround(p.y)));
      }
      for (std::size_t k = end; k-- > i;) {
        const auto p = f.map(s.x[k], s.lower[k]);
        polygon.emplace_back(static_cast<int>(std::lround(p.x)),
                             static_cast<int>(std::lround(p.y)));
      }
      cv::fillPoly(overlay, std::vector<std::vector<cv::Point>>{polygon}, color, cv::LINE_AA);
      drawn = true;
    }
    i = end;
  }
  if (!drawn) return;
  cv::Mat area = img(f.area);
  cv::addWeighted(overlay(f.area), 0.2, area, 0.8, 0, area);
}

void draw_legend(cv::Mat& img, const Frame& f, const std::vector<PlotSeries>& series) {
  std::vector<std::size_t> listed;
  int text_width = 0;
  for (std::size_t i = 0; i < series.size(); ++i) {
    if (series[i].name.empty()) continue;
    listed.push_back(i);
    text_width = std::max(text_width, text_size(series[i].name, kTickScale).width);
  }
  if (listed.empty()) return;
  const int row = 18;
  const cv::Rect box(f.area.x + f.area.width - text_width - 46, f.area.y + 8, text_width + 38,
                     static_cast<int>(listed.size()) * row + 8);
  cv::rectangle(img, box, kWhite, cv::FILLED);
  cv::rectangle(img, box, cv::Scalar(160, 160, 160), 1);
  for (std::size_t k = 0; k < listed.size(); ++k) {
    const int y = box.y + 4 + static_cast<int>(k) * row + row / 2;
    const auto& color = kPalette[listed[k] % std::size(kPalette)];
    cv::line(img, {box.x + 6, y}, {box.x + 26, y}, color, 2, cv::LINE_AA);
    put_text(img, series[listed[k]].name, {box.x + 32, y + 5}, kTickScale);
  }
}

void draw_labels(cv::Mat& img, const Frame& f, const PlotOptions& o) {
  if (!o.title.empty()) {
    const auto size = text_size(o.title, kTitleScale);
    put_text(img, o.title, {(img.cols - size.width) / 2, 12 + size.height}, kTitleScale);
  }
  if (!o.x_label.empty()) {
    const auto size = text_size(o.x_label, kLabelScale);
    put_text(img, o.x_label, {f.area.x + (f.area.width - size.width) / 2, img.rows - 8},
             kLabelScale);
  }
  if (!o.y_label.empty()) {
    // Drawn horizontally on a strip, then turned a quarter counter-clockwise into the left margin.
    const auto size = text_size(o.y_label, kLabelScale);
    cv::Mat strip(size.height + 8, size.width + 4, CV_8UC3, kWhite);
    put_text(strip, o.y_label, {2, size.height + 2}, kLabelScale);
    cv::rotate(strip, strip, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int x = 4;
    const int y = std::max(0, f.area.y + (f.area.height - strip.rows) / 2);
    const cv::Rect target(x, y, strip.cols, std::min(strip.rows, img.rows - y));
    strip(cv::Rect(0, 0, target.width, target.height)).copyTo(img(target));
  }
}

cv::Mat render_bgr(const std::vector<PlotSeries>& series, const PlotOptions& o) {
  validate(series, o);
  cv::Mat img(o.height, o.width, CV_8UC3, kWhite);
  const Frame frame = layout(series, o);
  draw_axes(img, frame);
  for (std::size_t i = 0; i < series.size(); ++i) {
    draw_band(img, frame, series[i], o, kPalette[i % std::size(kPalette)]);
  }
  for (std::size_t i = 0; i < series.size(); ++i) {
    draw_series(img, frame, series[i], o, kPalette[i % std::size(kPalette)]);
  }
  cv::rectangle(img, frame.area, kBlack, 1);  // again, over line ends at the border
  if (o.legend) draw_legend(img, frame, series);
  draw_labels(img, frame, o);
  return img;
}

}  // namespace

PlotImage render_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  cv::Mat rgb;
  try {
    cv::cvtColor(render_bgr(series, options), rgb, cv::COLOR_BGR2RGB);
  } catch (const cv::Exception& e) {
    fail("drawing the plot failed in OpenCV: ", e.what());
  }
  PlotImage image;
  image.width = rgb.cols;
  image.height = rgb.rows;
  image.rgb.assign(rgb.data, rgb.data + rgb.total() * rgb.elemSize());
  return image;
}

std::string encode_line_plot_png(const std::vector<PlotSeries>& series,
                                 const PlotOptions& options) {
  std::vector<std::uint8_t> bytes;
  try {
    const cv::Mat img = render_bgr(series, options);
    TLKIT_CHECK(cv::imencode(".png", img, bytes, {cv::IMWRITE_PNG_COMPRESSION, 9}),
                "OpenCV could not encode the plot as PNG");
  } catch (const cv::Exception& e) {
    fail("encoding the plot as PNG failed in OpenCV: ", e.what());
  }
  return std::string(bytes.begin(), bytes.end());
}

void write_line_plot(const std::filesystem::path& path, const std::vector<PlotSeries>& series,
                     const PlotOptions& options) {
  write_file_atomic(path, encode_line_plot_png(series, options));
}

}  // namespace tlkit
