// `tlkit predict --out`: one row per image (CSV quoting that Python's csv module reads back, or a
// JSON array), an unreadable image as a row with its error, and --resume after a file cut short
// by a kill (its partial last row dropped, the rest predicted once).

#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/csv.h>
#include <tlkit/core/json.h>
#include <tlkit/core/strings.h>
#include <tlkit/data/image_io.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

namespace {

class PredictCli : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(5);
    fs::create_directories(images_ / "sub");
    const std::vector<std::string> names{"a.png", "b.png", "sub/c.png", "sub/d.png",
                                         "sub/e,f \"quoted\".png", "sub/g.png", "sub/h.png"};
    for (const auto& name : names)
      tlkit::data::write_image(images_ / name, torch::randint(0, 255, {16, 16, 3}).to(torch::kByte));
    tlkit::write_file_atomic(images_ / "sub" / "broken.png", "not a png");
    tlkit::write_file_atomic(images_ / "notes.txt", "not an image");  // left out: not an image name
    tlkit::write_file_atomic(images_ / ".hidden.png", "left out");
  }
  std::string predict(const fs::path& out, const std::string& extra = "") const {
    return "predict --model " + quoted(tlkit::test::tiny_model()) + " --top 3 --batch-size 3 " +
           quoted(images_) + " --out " + quoted(out) + " " + extra;
  }
  tlkit::test::TempDir dir_;
  fs::path images_ = dir_ / "images";
};

std::vector<std::vector<std::string>> csv_rows(const fs::path& file) {
  return tlkit::parse_csv(tlkit::read_file(file)).records;
}

}  // namespace

TEST_F(PredictCli, CsvHasARowPerImageAndOneForTheCorruptImage) {
  const auto out = dir_ / "preds.csv";
  const auto result = tlkit_cli(predict(out));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(contains(result.output, "1 of 8 images could not be read: their error column")) << result.output;
  const auto rows = csv_rows(out);
  ASSERT_EQ(rows.size(), 9u) << tlkit::read_file(out);  // header + 8 images
  EXPECT_EQ(tlkit::join(rows[0], ","),
            "path,label_1,probability_1,label_2,probability_2,label_3,probability_3,error");
  size_t errors = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& row = rows[i];
    if (!row.back().empty()) {
      ++errors;
      EXPECT_EQ(row[0], (images_ / "sub" / "broken.png").string());
      EXPECT_TRUE(contains(row.back(), "broken.png")) << row.back();
      EXPECT_TRUE(row[1].empty());
      continue;
    }
    const double p1 = std::stod(row[2]), p2 = std::stod(row[4]), p3 = std::stod(row[6]);
    EXPECT_GE(p1, p2);
    EXPECT_GE(p2, p3);
    EXPECT_LE(p1 + p2 + p3, 1.0 + 1e-5);
    EXPECT_FALSE(row[1].empty());
  }
  EXPECT_EQ(errors, 1u);
  // Python's csv module reads the same paths back (the one with a comma and quotes included).
  const auto python = tlkit::test::run_command(
      tlkit::test::torch_python() +
      " -c 'import csv, sys; print(\"|\".join(r[0] for r in csv.reader(open(sys.argv[1]))))' " +
      quoted(out));
  ASSERT_EQ(python.exit_code, 0) << python.output;
  EXPECT_TRUE(contains(python.output, "|" + (images_ / "sub" / "e,f \"quoted\".png").string() + "|"))
      << python.output;

  // The printed predictions (no --out) are the same, and the unreadable file still fails the run.
  const auto printed = tlkit_cli("predict --model " + quoted(tlkit::test::tiny_model()) +
                                 " -k 3 " + quoted(images_));
  EXPECT_EQ(printed.exit_code, 1) << printed.output;
  EXPECT_TRUE(contains(printed.output, "1 of 8 images could not be read")) << printed.output;
  EXPECT_TRUE(contains(printed.output, rows[1][0] + "\n   1. " + rows[1][1])) << printed.output;

  // An existing file is not written over without --resume.
  const auto again = tlkit_cli(predict(out));
  EXPECT_EQ(again.exit_code, 2) << again.output;  // a usage error
  EXPECT_TRUE(contains(again.output, "--resume")) << again.output;
}

TEST_F(PredictCli, ResumeDropsAPartialLastRowAndPredictsTheRestOnce) {
  const auto full = dir_ / "full.csv";
  ASSERT_EQ(tlkit_cli(predict(full)).exit_code, 0);
  const auto text = tlkit::read_file(full);
  // A kill in the middle of the fourth row: header, three rows and part of the fourth.
  size_t cut = 0;
  for (int line = 0; line < 4; ++line) cut = text.find('\n', cut) + 1;
  const auto cut_file = dir_ / "cut.csv";
  tlkit::write_file_atomic(cut_file, text.substr(0, cut + 7));
  const auto resumed = tlkit_cli(predict(cut_file, "--resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "dropped the partial last row")) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "3 of 8 images already have a row")) << resumed.output;
  const auto a = csv_rows(full), b = csv_rows(cut_file);
  ASSERT_EQ(a.size(), b.size()) << tlkit::read_file(cut_file);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i][0], b[i][0]) << i;  // the same images in the same order, each once
    EXPECT_EQ(a[i][1], b[i][1]) << i;
  }
  // A finished file resumes to itself; another --top is refused.
  ASSERT_EQ(tlkit_cli(predict(cut_file, "--resume")).exit_code, 0);
  EXPECT_EQ(csv_rows(cut_file).size(), a.size());
  const auto other = tlkit_cli("predict --model " + quoted(tlkit::test::tiny_model()) +
                               " --top 2 " + quoted(images_) + " --out " + quoted(cut_file) +
                               " --resume");
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_TRUE(contains(other.output, "another top-k")) << other.output;
}

TEST_F(PredictCli, JsonIsAnArrayEvenAfterAResume) {
  const auto out = dir_ / "preds.json";
  ASSERT_EQ(tlkit_cli(predict(out)).exit_code, 0);
  const auto full = tlkit::Json::parse(tlkit::read_file(out));
  ASSERT_EQ(full.size(), 8u);
  EXPECT_EQ(full.at(0).at("labels").size(), 3u);
  // Cut inside the third row, resume: the same rows again, valid JSON.
  const auto text = tlkit::read_file(out);
  size_t cut = 0;
  for (int line = 0; line < 3; ++line) cut = text.find('\n', cut) + 1;
  tlkit::write_file_atomic(out, text.substr(0, cut + 10));
  const auto resumed = tlkit_cli(predict(out, "--resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const auto again = tlkit::Json::parse(tlkit::read_file(out));
  ASSERT_EQ(again.size(), 8u);
  size_t errors = 0;
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again.at(i).at("path").as_string(), full.at(i).at("path").as_string());
    errors += again.at(i).at("error").is_null() ? 0 : 1;
  }
  EXPECT_EQ(errors, 1u);
}
