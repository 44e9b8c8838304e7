#include "report_html.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include <tlkit/core/strings.h>
#include <tlkit/train/classification_report.h>

#include "calibration.h"

namespace tlkit::pipeline::detail {
namespace {

namespace fs = std::filesystem;

constexpr const char* kStyle = R"(
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead { background: #f2f2f2; }
tr.exported { background: #e3f4e1; font-weight: bold; }
.badge { background: #2e7d32; color: #fff; border-radius: 3px; padding: 0 0.4em; font-size: 85%; }
.why { background: #f7f7f7; border-left: 4px solid #2e7d32; padding: 0.4em 0.8em; }
.missing { color: #a33; font-style: italic; }
.pair { display: flex; gap: 1em; align-items: flex-start; }
.pair > * { flex: 1; min-width: 0; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
code { background: #f2f2f2; padding: 0 0.2em; }
)";

// An escaped line of Markdown text with its `code` spans as <code>.
std::string inline_html(const std::string& text) {
  std::string out;
  bool open = false;
  for (const char ch : html_escape(text)) {
    if (ch != '`') {
      out += ch;
      continue;
    }
    out += open ? "</code>" : "<code>";
    open = !open;
  }
  return open ? out + "</code>" : out;
}

std::vector<std::string> table_cells(const std::string& row) {
  auto cells = split_trimmed(row, '|');
  if (!cells.empty() && cells.front().empty()) cells.erase(cells.begin());
  if (!cells.empty() && cells.back().empty()) cells.pop_back();
  return cells;
}

bool is_separator_row(const std::vector<std::string>& cells) {
  return !cells.empty() && std::all_of(cells.begin(), cells.end(), [](const std::string& cell) {
    return !cell.empty() && cell.find_first_not_of("-:") == std::string::npos;
  });
}

// The Markdown that results.md's sections are made of (headings, paragraphs, "- " lists, tables,
// `code`) as HTML. Image lines are left out: the page places the pictures itself.
std::string markdown_html(const std::string& markdown) {
  enum class Block { None, Paragraph, List, Table };
  Block block = Block::None;
  std::vector<bool> right_aligned;  // the open table's columns, from its separator row
  std::string out;
  const auto open = [&](Block wanted, const char* tag) {
    if (block == wanted) return false;
    if (block == Block::Paragraph) out += "</p>\n";
    if (block == Block::List) out += "</ul>\n";
    if (block == Block::Table) out += "</tbody>\n</table>\n";
    block = wanted;
    out += tag;
    return true;
  };
  std::istringstream in(markdown);
  for (std::string line; std::getline(in, line);) {
    const auto text = trim(line);
    if (text.empty() || text.rfind("![", 0) == 0) {
      open(Block::None, "");
    } else if (text[0] == '#') {
      open(Block::None, "");
      const auto hashes = std::min(text.find_first_not_of('#'), text.size());
      out += fmt::format("<h{0}>{1}</h{0}>\n", std::min<size_t>(hashes, 6),
                         inline_html(trim(text.substr(hashes))));
    } else if (text[0] == '|') {
      const auto cells = table_cells(text);
      if (open(Block::Table, "<table>\n<thead><tr>")) {
        for (const auto& cell : cells) out += "<th>" + inline_html(cell) + "</th>";
        out += "</tr></thead>\n<tbody>\n";
        right_aligned.clear();
      } else if (right_aligned.empty() && is_separator_row(cells)) {
        for (const auto& cell : cells) right_aligned.push_back(cell.back() == ':');
      } else {
        out += "<tr>";
        for (size_t c = 0; c < cells.size(); ++c)
          out += (c < right_aligned.size() && right_aligned[c] ? "<td class=\"num\">" : "<td>") +
                 inline_html(cells[c]) + "</td>";
        out += "</tr>\n";
      }
    } else if (text.rfind("- ", 0) == 0) {
      open(Block::List, "<ul>\n");
      out += "<li>" + inline_html(text.substr(2)) + "</li>\n";
    } else {
      if (!open(Block::Paragraph, "<p>")) out += "\n";
      out += inline_html(text);
    }
  }
  open(Block::None, "");
  return out;
}

// A picture of the run folder, or a line saying it was not written.
std::string figure(const fs::path& dir, const std::string& file, const std::string& caption) {
  if (!fs::is_regular_file(dir / file))
    return fmt::format("<p class=\"missing\">No {}: {} was not written in this run.</p>\n",
                       html_escape(caption), html_escape(file));
  return fmt::format(
      "<figure><img src=\"{0}\" alt=\"{1}\"><figcaption>{1} ({0})</figcaption>"
      "</figure>\n",
      html_escape(file), html_escape(caption));
}

// The run folder's name ("run" for "out/run/" too).
std::string run_name(const fs::path& dir) {
  return (dir.has_filename() ? dir.filename() : dir.parent_path().filename()).string();
}

// Two pictures side by side.
std::string side_by_side(const std::string& left, const std::string& right) {
  return "<div class=\"pair\">\n" + left + right + "</div>\n";
}

std::string title_block(const RunConfig& resolved, const fs::path& dir,
                        const std::string& written) {
  std::string out = fmt::format(
      "<h1>tlkit {}: {}</h1>\n<p class=\"meta\">model <code>{}</code> &middot; data "
      "<code>{}</code> &middot; written {}</p>\n",
      html_escape(resolved.command), html_escape(run_name(dir)),
      html_escape(resolved.model.string()), html_escape(resolved.data.source),
      html_escape(written));
  std::vector<std::string> links;
  for (const char* file : {"results.md", "summary.json", "config.json", "metrics.csv", "model.pt"})
    if (fs::is_regular_file(dir / file))
      links.push_back(fmt::format("<a href=\"{0}\">{0}</a>", file));
  if (!links.empty()) out += "<p>Files: " + join(links, " &middot; ") + "</p>\n";
  return out;
}

std::string results_table(const RunResult& result) {
  std::string out = fmt::format(
      "<h2>Results on the {}</h2>\n<table>\n<thead><tr><th>model</th><th>accuracy</th>"
      "<th>loss</th><th>images</th></tr></thead>\n<tbody>\n",
      result.split.empty() ? "(no test or val split)" : html_escape(result.split) + " split");
  for (const auto& row : result.rows) {
    out += row.exported ? "<tr class=\"exported\">" : "<tr>";
    out += "<td>" + html_escape(row.name) +
           (row.exported ? " <span class=\"badge\">exported</span>" : "") + "</td>";
    if (row.examples == 0)
      out += "<td class=\"num\">-</td><td class=\"num\">-</td><td class=\"num\">0</td>";
    else
      out += fmt::format(
          "<td class=\"num\">{:.2f}%</td><td class=\"num\">{:.4f}</td><td class=\"num\">{}</td>",
          100.0 * row.accuracy, row.loss, row.examples);
    out += "</tr>\n";
  }
  out += "</tbody>\n</table>\n";
  if (!result.exported.empty())
    out +=
        fmt::format("<p class=\"why\">Exported: <code>{}</code>, the {} weights, because: {}</p>\n",
                    html_escape(result.exported.filename().string()),
                    html_escape(result.exported_from), html_escape(result.exported_because));
  return out;
}

// The exported model's metrics, per class, and what it gets wrong, with its pictures.
std::string exported_model(const RunResult& result, const fs::path& dir) {
  std::string out;
  const auto exported = std::find_if(result.rows.begin(), result.rows.end(),
                                     [](const ResultRow& row) { return row.exported; });
  if (exported != result.rows.end() && exported->evaluation.confusion.defined() &&
      exported->examples > 0) {
    out += "<h2>The exported model on the " + html_escape(result.split) + " split</h2>\n" +
           markdown_html(train::format_markdown(exported->evaluation, result.classes));
    out += markdown_html(result.pictures);
  } else {
    out += "<h2>The exported model</h2>\n<p>Not measured: the run has no test or val split.</p>\n";
  }
  return out + side_by_side(figure(dir, "confusion_matrix.png", "confusion matrix"),
                            figure(dir, "top_losses.png", "top losses"));
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string format_report_html(const RunConfig& resolved, const RunResult& result,
                               const fs::path& dir, const std::string& written) {
  std::string out = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>tlkit {}: {}</title>\n<style>{}</style>\n</head>\n<body>\n",
      html_escape(resolved.command), html_escape(run_name(dir)), kStyle);
  out += title_block(resolved, dir, written);
  out += results_table(result);
  out += exported_model(result, dir);
  out += "<h2>Learning curves</h2>\n" +
         side_by_side(figure(dir, "curves_loss.png", "loss per epoch"),
                      figure(dir, "curves_accuracy.png", "accuracy per epoch"));
  out += markdown_html(calibration_markdown(result.calibration));
  out += markdown_html(result.decisions);
  out += "<h2>Resolved config</h2>\n<pre>" + html_escape(resolved.to_json().dump(2)) + "</pre>\n";
  return out + "</body>\n</html>\n";
}

}  // namespace tlkit::pipeline::detail
