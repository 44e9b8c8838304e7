#include <tlkit/core/tensorboard.h>

#include <cstring>

#include <gtest/gtest.h>

#include "support/test_support.h"

TEST(TensorBoard, Crc32cMatchesTheStandardCheckValue) {
  const char* check = "123456789";
  EXPECT_EQ(tlkit::crc32c(check, std::strlen(check)), 0xE3069283u);
}

// The event file is read back by an independent Python reader (scripts/read_tfevents.py) that
// verifies every record CRC and decodes the protocol buffers.
TEST(TensorBoard, ScalarsReadBackByIndependentReader) {
  tlkit::test::TempDir dir;
  std::string event_path;
  {
    tlkit::TensorBoardWriter writer(dir.path());
    writer.add_scalar("train/loss", 2.5, 0);
    writer.add_scalar("train/loss", 1.25, 1);
    writer.add_scalar("lr/group0", 1e-3, 1);
    writer.add_scalar("val/acc", 0.875, 300);
    writer.flush();
    event_path = writer.path().string();
  }
  EXPECT_NE(event_path.find("events.out.tfevents."), std::string::npos);
  const auto result = tlkit::test::run_command(
      tlkit::test::torch_python() + " " +
      (tlkit::test::source_dir() / "scripts/read_tfevents.py").string() + " " + event_path);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output,
            "train/loss,0,2.5\ntrain/loss,1,1.25\nlr/group0,1,0.00100000005\nval/acc,300,0.875\n");
}
