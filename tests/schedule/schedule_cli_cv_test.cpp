// The built `tlkit schedule` command: output, CSV, PNG, metric file, errors and exit codes.

#include <sstream>

#include <gtest/gtest.h>

#include <tlkit/core/atomic_file.h>

#include "schedule/schedule_reference.h"
#include "support/test_support.h"

namespace {

using tlkit::test::run_command;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<double> csv_row(const std::string& line) {
  std::vector<double> values;
  std::istringstream in(line);
  for (std::string cell; std::getline(in, cell, ',');) values.push_back(std::stod(cell));
  return values;
}

std::string schedule_command(const std::string& arguments) {
  return "'" + tlkit::test::cli_path() + "' schedule " + arguments;
}

TEST(ScheduleCli, PrintsWritesCsvAndPlotMatchingTheLibrary) {
  tlkit::test::TempDir dir;
  const auto csv = dir / "lr.csv";
  const auto png = dir / "lr.png";
  const auto result = run_command(
      schedule_command("--spec restarts:T_0=5,T_mult=2 --steps 40 --groups 0.1,0.01 --csv '" +
                       csv.string() + "' --plot '" + png.string() + "'"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto printed = lines_of(result.output);
  ASSERT_EQ(printed.size(), 41u) << result.output;
  EXPECT_EQ(printed[0], "step  lr_group0  lr_group1");

  const auto rows = lines_of(tlkit::read_file(csv));
  ASSERT_EQ(rows.size(), 41u);
  EXPECT_EQ(rows[0], "step,lr_group0,lr_group1");
  auto optimizer = tlkit::test::make_reference_optimizer("sgd");
  tlkit::schedule::CosineAnnealingWarmRestarts expected(*optimizer, 5, 2);
  for (std::size_t step = 0; step < 40; ++step) {
    if (step > 0) expected.step();
    const auto row = csv_row(rows[step + 1]);
    ASSERT_EQ(row.size(), 3u);
    EXPECT_EQ(row[0], static_cast<double>(step));
    EXPECT_EQ(row[1], expected.get_last_lr()[0]) << "step " << step;  // %.17g round-trips exactly
    EXPECT_EQ(row[2], expected.get_last_lr()[1]) << "step " << step;
  }
  const auto image = tlkit::read_file(png);
  EXPECT_EQ(image.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(ScheduleCli, OneCycleAddsMomentumColumns) {
  tlkit::test::TempDir dir;
  const auto csv = dir / "onecycle.csv";
  const auto result = run_command(
      schedule_command("--spec onecycle --steps 30 --optimizer adam --csv '" + csv.string() + "'"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto rows = lines_of(tlkit::read_file(csv));
  EXPECT_EQ(rows[0], "step,lr_group0,momentum_group0");
  EXPECT_NEAR(csv_row(rows[1])[2], 0.95, 1e-15);      // momentum starts at max_momentum
  EXPECT_NEAR(csv_row(rows[1])[1], 0.1 / 25, 1e-15);  // lr starts at max_lr / div_factor
}

TEST(ScheduleCli, PlateauReadsTheMetricFile) {
  tlkit::test::TempDir dir;
  const auto metrics = dir / "val_loss.txt";
  tlkit::write_file_atomic(metrics, "# validation loss\n1.0\n0.9\n0.9\n0.9\n0.9\n0.9\n");
  const auto result = run_command(schedule_command(
      "--spec plateau:patience=1,factor=0.5 --steps 6 --metric-file '" + metrics.string() + "'"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto printed = lines_of(result.output);
  ASSERT_EQ(printed.size(), 7u) << result.output;
  EXPECT_EQ(printed[3], "2  0.1");   // 0.9 after 1.0: an improvement
  EXPECT_EQ(printed[4], "3  0.1");   // 0.9 again: one bad epoch
  EXPECT_EQ(printed[5], "4  0.05");  // two bad epochs > patience 1: halved
  const auto missing = run_command(schedule_command("--spec plateau --steps 6"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("--metric-file"), std::string::npos) << missing.output;
}

TEST(ScheduleCli, BadSpecIsExitCode2WithOneMessage) {
  for (const std::string spec : {"cosinus", "step:gama=3", "cosine:T_max=x"}) {
    const auto result = run_command(schedule_command("--spec '" + spec + "' --steps 10"));
    EXPECT_EQ(result.exit_code, 2) << spec << ": " << result.output;
    EXPECT_EQ(lines_of(result.output).size(), 1u) << result.output;
    EXPECT_NE(result.output.find("bad --spec '" + spec + "'"), std::string::npos) << result.output;
  }
  EXPECT_EQ(run_command(schedule_command("--steps 10")).exit_code, 2);
  EXPECT_EQ(run_command(schedule_command("--spec cosine --groups 0.1,abc")).exit_code, 2);
}

TEST(ScheduleCli, HelpShowsAnExampleAndTheSchedules) {
  const auto result = run_command(schedule_command("--help"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("Example:"), std::string::npos);
  for (const auto& name : tlkit::schedule::schedule_names()) {
    EXPECT_NE(result.output.find(name), std::string::npos) << name;
  }
}

}  // namespace
