#include <tlkit/pipeline/predictions.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <spdlog/fmt/fmt.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/csv.h>
#include <tlkit/core/error.h>
#include <tlkit/core/json.h>
#include <tlkit/core/logging.h>
#include <tlkit/core/strings.h>

namespace fs = std::filesystem;

namespace tlkit::pipeline {
namespace {

std::vector<std::string> csv_header(std::int64_t top_k) {
  std::vector<std::string> header{"path"};
  for (std::int64_t i = 1; i <= top_k; ++i) {
    header.push_back("label_" + std::to_string(i));
    header.push_back("probability_" + std::to_string(i));
  }
  header.push_back("error");
  return header;
}

// Cuts `file` (`was` bytes long) to its first `size` bytes; `partial`: what is cut is a row an
// earlier run was stopped in the middle of writing (said in the log).
void truncate_to(const fs::path& file, std::size_t size, std::size_t was, bool partial = true) {
  TLKIT_CHECK(::truncate(file.c_str(), static_cast<off_t>(size)) == 0, "cannot trim '",
              file.string(), "' to its whole rows: ", std::strerror(errno));
  if (partial && size > 0)
    logger()->info("dropped the partial last row of '{}' ({} bytes, cut short when an earlier "
                   "run was stopped)", file.string(), was - size);
}

}  // namespace

PredictionWriter::PredictionWriter(fs::path file, std::int64_t top_k, bool resume)
    : file_(std::move(file)), top_k_(top_k) {
  auto extension = file_.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  TLKIT_CHECK(extension == ".csv" || extension == ".json", "the predictions file '",
              file_.string(), "' must end in .csv or .json (its format)");
  TLKIT_CHECK(top_k_ > 0, "predictions need at least one class per row, got top-k ", top_k_);
  json_ = extension == ".json";
  std::error_code error;
  const bool exists = fs::exists(file_, error);
  TLKIT_CHECK(!exists || resume, "'", file_.string(),
              "' already holds predictions; resume it or write to another file");
  if (exists) json_ ? resume_json(read_file(file_)) : resume_csv(read_file(file_));
  fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  TLKIT_CHECK(fd_ >= 0, "cannot write predictions to '", file_.string(), "': ",
              std::strerror(errno));
  if (fs::file_size(file_, error) == 0 && !error)
    write_all(json_ ? std::string("[\n") : csv_record(csv_header(top_k_)));
}

PredictionWriter::~PredictionWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void PredictionWriter::resume_csv(const std::string& text) {
  const auto parsed = parse_csv(text);
  if (parsed.records.empty()) {  // nothing whole, not even the header: start again
    truncate_to(file_, 0, text.size());
    return;
  }
  const auto header = csv_header(top_k_);
  TLKIT_CHECK(parsed.records.front() == header, "'", file_.string(), "' has the columns [",
              join(parsed.records.front()), "] but these predictions have [", join(header),
              "] (another top-k?); continue it with the same top-k, or write to another file");
  for (size_t i = 1; i < parsed.records.size(); ++i) {
    TLKIT_CHECK(parsed.records[i].size() == header.size(), "row ", i + 1, " of '",
                file_.string(), "' has ", parsed.records[i].size(), " fields, not ",
                header.size(), ": the file is damaged; remove it or write to another file");
    done_.insert(parsed.records[i].front());
  }
  if (parsed.complete_bytes < text.size()) truncate_to(file_, parsed.complete_bytes, text.size());
}

void PredictionWriter::resume_json(const std::string& text) {
  std::size_t begin = 0, kept = 0, line_number = 0;
  bool finished = false;
  while (true) {
    const auto end = text.find('\n', begin);
    if (end == std::string::npos) break;  // a partial last line (or none)
    const auto line = text.substr(begin, end - begin);
    ++line_number;
    if (line_number == 1) {
      TLKIT_CHECK(line == "[", "'", file_.string(),
                  "' is not a predictions file tlkit wrote (its first line is not '['); remove "
                  "it or write to another file");
    } else if (line == "]") {
      finished = true;  // its end is written again when this run finishes
      break;
    } else {
      Json row;
      try {
        row = Json::parse(line.substr(line.rfind(',', 0) == 0 ? 1 : 0));
      } catch (const Error& e) {
        fail("line ", line_number, " of '", file_.string(), "' is not a prediction row (", e.what(),
             "): the file is damaged; remove it or write to another file");
      }
      const auto labels = row.at("labels").size();
      TLKIT_CHECK(!row.at("error").is_null() || static_cast<std::int64_t>(labels) == top_k_,
                  "'", file_.string(), "' holds rows of ", labels, " classes, these predictions ",
                  top_k_, "; continue it with the same top-k, or write to another file");
      done_.insert(row.at("path").as_string());
      any_row_ = true;
    }
    begin = kept = end + 1;
  }
  if (kept < text.size()) truncate_to(file_, kept, text.size(), !finished);
}

std::string PredictionWriter::format(const PredictionRow& row) {
  if (json_) {
    Json item = Json::object();
    item["path"] = row.path;
    item["labels"] = row.labels;
    item["probabilities"] = row.probabilities;
    item["error"] = row.error.empty() ? Json() : Json(row.error);
    const std::string line = (any_row_ ? "," : "") + item.dump() + "\n";
    any_row_ = true;
    return line;
  }
  std::vector<std::string> fields{row.path};
  for (std::int64_t i = 0; i < top_k_; ++i) {
    const auto at = static_cast<size_t>(i);
    fields.push_back(at < row.labels.size() ? row.labels[at] : "");
    fields.push_back(at < row.probabilities.size() ? fmt::format("{:.6g}", row.probabilities[at])
                                                   : "");
  }
  fields.push_back(row.error);
  return csv_record(fields);
}

void PredictionWriter::append(const std::vector<PredictionRow>& rows) {
  std::string text;
  for (const auto& row : rows) text += format(row);
  write_all(text);
}

void PredictionWriter::write_all(const std::string& text) {
  std::size_t written = 0;
  while (written < text.size()) {
    const auto n = ::write(fd_, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    TLKIT_CHECK(n > 0, "cannot write predictions to '", file_.string(), "': ",
                n < 0 ? std::strerror(errno) : "nothing written", " (a full disk?)");
    written += static_cast<std::size_t>(n);
  }
}

void PredictionWriter::finish() {
  if (json_) write_all("]\n");
  TLKIT_CHECK(::fsync(fd_) == 0, "cannot write predictions to '", file_.string(), "': ",
              std::strerror(errno));
  TLKIT_CHECK(::close(fd_) == 0, "cannot write predictions to '", file_.string(), "': ",
              std::strerror(errno));
  fd_ = -1;
}

}  // namespace tlkit::pipeline
