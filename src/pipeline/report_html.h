#pragma once
// RUN/report.html (internal to the pipeline layer): the run's report as one self-contained page
// for a browser. Inline CSS, no scripts, no network: the only files it refers to are those of the
// run folder (the PNGs, results.md, summary.json, ...), by relative path, and only those that
// exist when the page is written; a picture that was not drawn is named as missing instead.
// Every string from the user's data (class names, paths, config values) is HTML-escaped.

#include <filesystem>
#include <string>

#include <tlkit/pipeline/config.h>
#include <tlkit/pipeline/transfer.h>

namespace tlkit::pipeline::detail {

// The page for `result` of the run `resolved`, whose folder is `dir` (read for which files exist);
// `written` is the date shown in the title block.
std::string format_report_html(const RunConfig& resolved, const RunResult& result,
                               const std::filesystem::path& dir, const std::string& written);

// Characters with a meaning in HTML (& < > " ') as entities.
std::string html_escape(const std::string& text);

}  // namespace tlkit::pipeline::detail
