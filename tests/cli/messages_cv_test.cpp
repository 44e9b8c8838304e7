// Faults the CLI reports in one tlkit line naming the cause (and exits non-zero for errors):
// models with damaged weights, traced models, models made for another input size, unreadable and
// looping data folders, paths std::filesystem cannot use, absurd schedule lengths.

#include <unistd.h>

#include <gtest/gtest.h>

#include "cli/cli_fixtures.h"
#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

namespace {

// Tiny models, made once: a scripted Sequential (dropout included) for 16x16 inputs, the same
// traced in eval and in training mode, one with a NaN weight, one made for 32x32 inputs only.
const char* kModels = R"(
torch.manual_seed(0)
def net():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(4 * 16 * 16, 3))
m = net()
torch.jit.script(m).save('{dir}/scripted.pt')
m.train()
torch.jit.trace(m, torch.rand(2, 3, 16, 16), check_trace=False).save('{dir}/traced_train.pt')
m.eval()
torch.jit.trace(m, torch.rand(2, 3, 16, 16)).save('{dir}/traced_eval.pt')
n = net()
with torch.no_grad():
    n[4].weight[1, 7] = float('nan')
torch.jit.script(n).save('{dir}/nan.pt')
f = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
    torch.nn.Flatten(), torch.nn.Linear(4 * 32 * 32, 3))
torch.jit.script(f).save('{dir}/fixed32.pt')
)";

class Messages : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new tlkit::test::TempDir();
    const auto made = tlkit::test::run_python(kModels, dir_->path());
    ASSERT_EQ(made.exit_code, 0) << made.output;
    tlkit::test::make_band_folder(*dir_ / "data", 3, 2, 1);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path model(const std::string& name) { return *dir_ / (name + ".pt"); }
  static fs::path data() { return *dir_ / "data"; }
  static fs::path path(const std::string& name) { return *dir_ / name; }
  static std::string train(const fs::path& model, const fs::path& out, const std::string& more) {
    return "train --model " + quoted(model) + " --data " + quoted(data()) + " --out " +
           quoted(out) + " --input-size 16 --epochs 1 --batch-size 3 --no-progress " + more;
  }

  static tlkit::test::TempDir* dir_;
};
tlkit::test::TempDir* Messages::dir_ = nullptr;

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// Exactly one line says "error", and it holds every fragment.
void expect_one_error_line(const tlkit::test::CommandResult& result,
                           const std::vector<std::string>& fragments) {
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_EQ(count_of(result.output, "error"), 1u) << result.output;
  for (const auto& fragment : fragments)
    EXPECT_TRUE(contains(result.output, fragment)) << "no '" << fragment << "' in\n"
                                                   << result.output;
  EXPECT_FALSE(contains(result.output, "Sequential-style")) << result.output;
  EXPECT_FALSE(contains(result.output, "INTERNAL ASSERT")) << result.output;
  EXPECT_FALSE(contains(result.output, "filesystem error")) << result.output;
}

}  // namespace

TEST_F(Messages, NanWeightsAreNamed) {
  const auto result = tlkit_cli("info --model " + quoted(model("nan")) + " --input-size 16");
  expect_one_error_line(
      result, {"parameter '4.weight' holds NaN (1 of 3072 values)", "export the model again"});
}

TEST_F(Messages, AModelTracedInTrainingModeIsRefused) {
  const auto result = tlkit_cli(train(model("traced_train"), path("run_tt"), ""));
  expect_one_error_line(result, {"traced (torch.jit.trace) in training mode", "'3' (dropout)",
                                 "torch.jit.script(model)"});
  EXPECT_FALSE(fs::exists(path("run_tt")));
}

TEST_F(Messages, TrainingAModelTracedInEvalModeWarnsOnce) {
  const auto traced = tlkit_cli(train(model("traced_eval"), path("run_te"), ""));
  ASSERT_EQ(traced.exit_code, 0) << traced.output;
  EXPECT_EQ(count_of(traced.output, "traced (torch.jit.trace), not scripted"), 1u) << traced.output;
  EXPECT_TRUE(contains(traced.output, "'3' (dropout) stay in evaluation mode")) << traced.output;
  const auto scripted = tlkit_cli(train(model("scripted"), path("run_s"), ""));
  ASSERT_EQ(scripted.exit_code, 0) << scripted.output;
  EXPECT_FALSE(contains(scripted.output, "traced")) << scripted.output;
}

TEST_F(Messages, AModelMadeForAnotherInputSizeNamesTheLayerAndTheFix) {
  const auto result = tlkit_cli("info --model " + quoted(model("fixed32")));
  expect_one_error_line(
      result,
      {"does not fit the input size 224x224",
       "layer '3' (Linear) takes 4096 values per image, but gets an input of shape "
       "[1, 200704]",
       "mat1 and mat2 shapes cannot be multiplied", "it runs at 32x32: give --input-size 32"});
  EXPECT_EQ(tlkit_cli("info --model " + quoted(model("fixed32")) + " --input-size 32").exit_code,
            0);
}

TEST_F(Messages, SymlinksOutOfTheDataFolderAreSkippedWithOneWarningEach) {
  const auto root = path("linked");
  tlkit::test::make_band_folder(root, 3, 2, 1);
  const auto up = root / "train" / "a_top" / "up";
  const auto slash = root / "train" / "b_middle" / "slash";
  const auto loop = root / "val" / "c_bottom" / "again";
  fs::create_directory_symlink(root, up);
  fs::create_directory_symlink("/", slash);
  fs::create_directory_symlink(root / "val" / "c_bottom", loop);
  const auto result = tlkit_cli("train --model " + quoted(model("scripted")) + " --data " +
                                quoted(root) + " --out " + quoted(path("run_links")) +
                                " --input-size 16 --epochs 1 --batch-size 3 --no-progress");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const auto& link : {up, slash, loop})
    EXPECT_EQ(count_of(result.output, "skipping symlink '" + link.string() + "'"), 1u)
        << link << "\n"
        << result.output;
  EXPECT_TRUE(contains(result.output, "(a symlink loop)")) << result.output;
  EXPECT_FALSE(contains(result.output, "/proc")) << result.output;
  EXPECT_FALSE(contains(result.output, "again/again")) << result.output;
}

// chmod 000 stops anyone but root: as root the scan runs as user 'nobody' (setpriv).
TEST_F(Messages, AnUnreadableClassFolderSaysPermissionDenied) {
  std::string as_user;
  if (::geteuid() == 0) {
    if (tlkit::test::run_command("command -v setpriv").exit_code != 0)
      GTEST_SKIP() << "runs as root without setpriv: every folder is readable";
    as_user = "env TLKIT_CACHE_DIR=off setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  const auto root = path("locked");
  tlkit::test::make_band_folder(root, 2, 1, 1);
  const auto locked = root / "train" / "b_middle";
  fs::permissions(dir_->path(), fs::perms::all);  // reachable by the other user
  fs::permissions(locked, fs::perms::none);
  const auto out = fs::temp_directory_path() / ("tlkit_locked_run_" + std::to_string(::getpid()));
  const auto result = tlkit::test::run_command(as_user + quoted(fs::path(tlkit::test::cli_path())) +
                                               " train --model " + quoted(model("scripted")) +
                                               " --data " + quoted(root) + " --out " + quoted(out) +
                                               " --input-size 16 --no-progress");
  fs::permissions(locked, fs::perms::owner_all);
  expect_one_error_line(result,
                        {"cannot read class folder '" + locked.string() + "': Permission denied"});
  EXPECT_FALSE(contains(result.output, "holds no readable images")) << result.output;
}

TEST_F(Messages, OutBeingAFileIsNamedWithTheReason) {
  const auto file = path("a_file");
  std::ofstream(file) << "x";
  const auto result = tlkit_cli(train(model("scripted"), file / "run", ""));
  expect_one_error_line(result, {"'" + (file / "run").string() + "'", "Not a directory"});
}

TEST_F(Messages, AScheduleDryRunHasAStepLimit) {
  const auto result = tlkit_cli("schedule --spec cosine --steps 2000000000");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output,
                       "--steps 2000000000 is over the dry run's limit of "
                       "10000000 steps"))
      << result.output;
}
