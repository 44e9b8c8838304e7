#include <tlkit/core/progress.h>

#include <gtest/gtest.h>

#include <tlkit/core/atomic_file.h>

#include "support/test_support.h"

TEST(ProgressBar, RenderShowsCountMetricsAndEta) {
  tlkit::ProgressBar bar("epoch 3/10", 200);
  const std::string line = bar.render(50, {{"loss", 0.5}, {"lr", 1e-4}}, 10.0);
  EXPECT_NE(line.find("epoch 3/10"), std::string::npos);
  EXPECT_NE(line.find("50/200"), std::string::npos);
  EXPECT_NE(line.find("loss=0.5000"), std::string::npos);
  EXPECT_NE(line.find("lr=1.00e-04"), std::string::npos);
  EXPECT_NE(line.find("5.0 it/s"), std::string::npos);
  EXPECT_NE(line.find("ETA 30.0s"), std::string::npos);  // 150 left at 5/s
}

TEST(ProgressBar, PlainLinesWhenNotATerminal) {
  tlkit::test::TempDir dir;
  const auto path = dir / "log.txt";
  std::FILE* file = std::fopen(path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  {
    tlkit::ProgressBar bar("train", 8, file);
    EXPECT_FALSE(bar.is_terminal());
    for (int i = 1; i <= 8; ++i) bar.update(i, {{"loss", 1.0 / i}});
    bar.finish({{"loss", 0.125}});
  }
  std::fclose(file);
  const std::string text = tlkit::read_file(path);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("8/8"), std::string::npos);
  EXPECT_NE(text.find("loss=0.1250"), std::string::npos);
}

TEST(ProgressBar, FormatDuration) {
  EXPECT_EQ(tlkit::format_duration(12.34), "12.3s");
  EXPECT_EQ(tlkit::format_duration(185), "3m05s");
  EXPECT_EQ(tlkit::format_duration(3720), "1h02m");
}
