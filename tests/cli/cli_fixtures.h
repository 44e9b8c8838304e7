#pragma once
// Fixtures the CLI tests share: a tiny image folder whose classes are easy to learn, and readers
// for the files a run writes.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include <tlkit/data/image_io.h>

namespace tlkit::test {

inline std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// An image folder root/{train,val,test}/<class>/*.png of 16×16 images: class c has a bright band
// in rows [5c, 5c + 5) over noise, so the classes are easy to learn but not constant.
inline const std::vector<std::string> kClasses{"a_top", "b_middle", "c_bottom"};

inline void make_band_folder(const std::filesystem::path& root, int train, int val, int test) {
  torch::manual_seed(7);
  const std::vector<std::pair<std::string, int>> splits{
      {"train", train}, {"val", val}, {"test", test}};
  for (const auto& [split, count] : splits) {
    for (size_t c = 0; c < kClasses.size(); ++c) {
      const auto dir = root / split / kClasses[c];
      std::filesystem::create_directories(dir);
      for (int i = 0; i < count; ++i) {
        auto image = torch::randint(0, 70, {16, 16, 3}, torch::kLong);
        image.slice(0, 5 * static_cast<int64_t>(c), 5 * static_cast<int64_t>(c) + 5) += 150;
        tlkit::data::write_image(dir / (split + "_" + std::to_string(i) + ".png"),
                                 image.to(torch::kByte));
      }
    }
  }
}

// The numbers of a metrics.csv column, one per epoch.
inline std::vector<double> csv_column(const std::filesystem::path& csv, const std::string& name) {
  const auto lines = lines_of(csv);
  std::vector<double> values;
  if (lines.empty()) return values;
  std::vector<std::string> header;
  std::stringstream head(lines[0]);
  for (std::string cell; std::getline(head, cell, ',');) header.push_back(cell);
  const auto column = std::find(header.begin(), header.end(), name) - header.begin();
  for (size_t i = 1; i < lines.size(); ++i) {
    std::stringstream row(lines[i]);
    std::string cell;
    for (std::int64_t c = 0; std::getline(row, cell, ','); ++c)
      if (c == column) values.push_back(std::stod(cell));
  }
  return values;
}

}  // namespace tlkit::test
