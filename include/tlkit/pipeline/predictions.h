#pragma once
// A predictions file, one row per image, written as the predictions come and continued by a
// resume. Its format follows the extension:
//   .csv   path,label_1,probability_1,...,label_K,probability_K,error  (RFC 4180 quoting)
//   .json  an array with one object per line: {"path", "labels", "probabilities", "error"}; the
//          lines after the first start with a comma, so every line is whole and the file is
//          valid JSON once the closing "]" is written at the end.
// Rows are appended a batch at a time with one write() of whole lines on a file opened for
// appending, so a kill leaves whole rows and at most one partial last line. A resume keeps the
// whole rows (their paths are done()), drops a partial last line, and appends the rest; a file
// written for another K or format is refused, naming the difference.

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace tlkit::pipeline {

struct PredictionRow {
  std::string path;
  std::vector<std::string> labels;   // the top-K classes, most probable first
  std::vector<double> probabilities;  // theirs
  std::string error;                  // why the image could not be predicted ("" = it was)
};

class PredictionWriter {
 public:
  // Opens `file` for rows of `top_k` classes. Without `resume` an existing file is refused (it
  // may hold a long run's rows); with it, an existing file is continued (a missing one started).
  PredictionWriter(std::filesystem::path file, std::int64_t top_k, bool resume);
  ~PredictionWriter();
  PredictionWriter(const PredictionWriter&) = delete;
  PredictionWriter& operator=(const PredictionWriter&) = delete;

  // The paths of the rows the file already held when it was opened.
  const std::set<std::string>& done() const { return done_; }
  // Appends the rows as whole lines in one write; throws tlkit::Error naming the file on failure.
  void append(const std::vector<PredictionRow>& rows);
  // Ends the file (JSON: the closing bracket) and syncs it to disk.
  void finish();

 private:
  std::string format(const PredictionRow& row);
  void write_all(const std::string& text);
  void resume_csv(const std::string& text);
  void resume_json(const std::string& text);

  std::filesystem::path file_;
  std::int64_t top_k_;
  bool json_;
  bool any_row_ = false;  // JSON: a row is in the file (the next starts with a comma)
  int fd_ = -1;
  std::set<std::string> done_;
};

}  // namespace tlkit::pipeline
