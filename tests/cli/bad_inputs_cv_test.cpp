// The bad-input corpus (tests/bad_inputs/make_corpus.py writes it and the outcome of each case):
// every case through `tlkit train`, asserting the exit code, the message and, for files that are
// skipped, that the run completes, lists each one and exports a model; a run that fails leaves no
// run folder and says what is wrong in one error line.

#include <algorithm>
#include <sstream>

#include <gtest/gtest.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>

#include "model/fixtures.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;

TEST(BadInputs, EveryCaseOfTheCorpusHasItsOutcome) {
  tlkit::test::TempDir dir;
  const auto corpus = dir / "corpus";
  const auto made = tlkit::test::run_command(
      tlkit::test::torch_python() + " " +
      quoted(tlkit::test::source_dir() / "tests" / "bad_inputs" / "make_corpus.py") + " " +
      quoted(corpus));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const auto cases = tlkit::Json::parse(tlkit::read_file(corpus / "cases.json"));
  ASSERT_GE(cases.size(), 20u);
  const auto tiny = tlkit::test::tiny_model();
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases.at(i);
    const auto name = c.at("name").as_string();
    auto data = c.at("data").as_string();
    if (data.find(':') == std::string::npos) data = (corpus / data).string();
    const auto model =
        c.at("model").is_null() ? tiny : corpus / fs::path(c.at("model").as_string());
    auto args = c.at("args").as_string();
    for (auto at = args.find("{data}"); at != std::string::npos; at = args.find("{data}"))
      args.replace(at, 6, data);
    const auto out = dir / ("run_" + std::to_string(i));
    const auto result = tlkit::test::tlkit_cli(
        "train --model " + quoted(model) + " --data " + quoted(fs::path(data)) +
        (contains(args, "--out") ? std::string() : " --out " + quoted(out)) +
        " --epochs 1 --no-progress --batch-size 4 --input-size 16 " + args);
    const auto expected = c.at("exit").as_int();
    EXPECT_EQ(result.exit_code, expected) << name << "\n" << result.output;
    for (const auto& fragment : c.at("contains").as_string_list())
      EXPECT_TRUE(contains(result.output, fragment)) << name << ": no '" << fragment << "' in\n"
                                                     << result.output;
    for (const auto& file : c.at("skipped").as_string_list()) {
      std::istringstream lines(result.output);
      bool listed = false;
      for (std::string line; std::getline(lines, line);)
        listed = listed || (contains(line, "skipping") && contains(line, file));
      EXPECT_TRUE(listed) << name << ": '" << file << "' not listed as skipped\n" << result.output;
    }
    if (expected == 0) {
      EXPECT_TRUE(fs::exists(out / "model.pt")) << name;
    } else {
      EXPECT_FALSE(fs::exists(out)) << name << ": a failed run left a folder";
      size_t error_lines = 0;
      std::istringstream lines(result.output);
      for (std::string line; std::getline(lines, line);)
        error_lines += contains(line, "error") || contains(line, "tlkit train:");
      EXPECT_LE(error_lines, 1u) << name << ": more than one error line\n" << result.output;
    }
  }
}
