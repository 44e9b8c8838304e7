// RUN/report.html: a well-formed, self-contained page (balanced tags, escaped text, no network
// references, every referenced file inside the run folder and present) that marks the exported
// row and says why it was exported. The page is checked here without a browser;
// scripts/render_report.sh renders it with headless Chromium for a look.
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/json.h>

#include "cli/cli_fixtures.h"
#include "model/fixtures.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using tlkit::test::contains;
using tlkit::test::quoted;
using tlkit::test::tlkit_cli;

namespace {

struct HtmlScan {
  std::vector<std::string> problems;
  std::vector<std::string> references;  // every src and href value
};

// Where `text` (outside tags, or an attribute value) has a raw '<' or '>', or an '&' that starts
// no entity (&name; or &#digits;).
void check_text(const std::string& text, std::vector<std::string>& problems) {
  for (size_t k = 0; k < text.size(); ++k) {
    const char ch = text[k];
    if (ch == '<' || ch == '>')
      problems.push_back(std::string("raw '") + ch + "' in '" + text + "'");
    if (ch != '&') continue;
    size_t j = k + 1;
    if (j < text.size() && text[j] == '#') ++j;
    const size_t start = j;
    while (j < text.size() && std::isalnum(static_cast<unsigned char>(text[j]))) ++j;
    if (j == start || j >= text.size() || text[j] != ';')
      problems.push_back("an '&' that starts no entity in '" + text + "'");
  }
}

// The attributes of a start tag from `from` on: name="value", separated by blanks.
void scan_attributes(const std::string& tag, size_t from, HtmlScan& scan) {
  for (size_t a = from; a < tag.size();) {
    if (tag[a] == ' ') {
      ++a;
      continue;
    }
    const auto eq = tag.find("=\"", a);
    const auto end = eq == std::string::npos ? eq : tag.find('"', eq + 2);
    if (end == std::string::npos) {
      scan.problems.push_back("unquoted attribute in <" + tag + ">");
      return;
    }
    const auto attribute = tag.substr(a, eq - a);
    const auto value = tag.substr(eq + 2, end - eq - 2);
    check_text(value, scan.problems);
    if (attribute == "src" || attribute == "href") scan.references.push_back(value);
    a = end + 1;
  }
}

// A small well-formedness check of the HTML tlkit writes: every element it opens is closed in
// order (void elements excepted), text and attribute values are escaped, attributes are quoted.
HtmlScan scan_html(const std::string& html) {
  static const std::set<std::string> kVoid{"meta", "img", "br", "hr", "link", "input"};
  HtmlScan scan;
  std::vector<std::string> open;
  size_t i = 0;
  if (html.rfind("<!DOCTYPE html>", 0) == 0)
    i = 15;
  else
    scan.problems.push_back("no <!DOCTYPE html> at the start");
  while (i < html.size()) {
    const auto lt = html.find('<', i);
    check_text(html.substr(i, lt == std::string::npos ? std::string::npos : lt - i), scan.problems);
    if (lt == std::string::npos) break;
    const auto gt = html.find('>', lt);
    if (gt == std::string::npos) {
      scan.problems.push_back("a tag that never ends at " + std::to_string(lt));
      break;
    }
    const auto tag = html.substr(lt + 1, gt - lt - 1);
    i = gt + 1;
    const bool closing = !tag.empty() && tag[0] == '/';
    size_t n = closing ? 1 : 0;
    while (n < tag.size() && std::isalnum(static_cast<unsigned char>(tag[n]))) ++n;
    const auto name = tag.substr(closing ? 1 : 0, n - (closing ? 1 : 0));
    if (name.empty()) {
      scan.problems.push_back("'<" + tag + ">' is no tag");
      continue;
    }
    if (closing) {
      if (open.empty() || open.back() != name)
        scan.problems.push_back("</" + name + "> closes <" + (open.empty() ? "" : open.back()) +
                                ">");
      else
        open.pop_back();
      continue;
    }
    scan_attributes(tag, n, scan);
    if (kVoid.count(name) == 0) open.push_back(name);
    if (name == "style") i = html.find("</style>", i);  // CSS, not text
  }
  for (const auto& name : open) scan.problems.push_back("<" + name + "> is never closed");
  return scan;
}

std::string joined(const std::vector<std::string>& problems) {
  std::string out;
  for (const auto& p : problems) out += p + "\n";
  return out;
}

}  // namespace

// The check finds what it is there to find.
TEST(ReportHtml, TheCheckFindsBrokenPages) {
  const std::string head = "<!DOCTYPE html>\n<html><body>";
  EXPECT_TRUE(scan_html(head + "<p>a &amp; b</p><img src=\"x.png\" alt=\"x\"></body></html>")
                  .problems.empty());
  EXPECT_FALSE(scan_html(head + "<p><b>x</p></b></body></html>").problems.empty());
  EXPECT_FALSE(scan_html(head + "<p>x</p><div></body></html>").problems.empty());
  EXPECT_FALSE(scan_html(head + "<p>a & b</p></body></html>").problems.empty());
  EXPECT_FALSE(scan_html(head + "<p>a < b</p></body></html>").problems.empty());
  EXPECT_FALSE(scan_html(head + "<p>a > b</p></body></html>").problems.empty());
  EXPECT_FALSE(scan_html(head + "<img src=x.png></body></html>").problems.empty());
  EXPECT_FALSE(scan_html("<html><body></body></html>").problems.empty());
  EXPECT_EQ(scan_html(head + "<a href=\"r.md\">r</a></body></html>").references,
            std::vector<std::string>{"r.md"});
}

// A train run on classes whose names need escaping: the page is well formed, refers only to
// files of the run folder that exist, and marks the exported row with the reason.
TEST(ReportHtml, ARunWritesAWellFormedSelfContainedReport) {
  tlkit::test::TempDir dir;
  const std::string odd = "b&c <mid>";
  tlkit::test::make_band_folder(dir / "data", 4, 2, 3);
  for (const char* split : {"train", "val", "test"})
    fs::rename(dir / "data" / split / "b_middle", dir / "data" / split / odd);
  const auto out = dir / "run";
  const auto result = tlkit_cli("train --model " + quoted(tlkit::test::tiny_model()) +
                                " --reinit --data " + quoted(dir / "data") +
                                " --batch-size 6 --optimizer adam:lr=0.01 --schedule constant "
                                "--epochs 2 --seed 5 --no-progress --out " +
                                quoted(out));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  ASSERT_TRUE(fs::exists(out / "report.html")) << result.output;
  const auto html = tlkit::read_file(out / "report.html");

  const auto scan = scan_html(html);
  EXPECT_TRUE(scan.problems.empty()) << joined(scan.problems);
  EXPECT_FALSE(contains(html, "http://")) << html;
  EXPECT_FALSE(contains(html, "https://")) << html;
  EXPECT_FALSE(contains(html, "<script")) << html;
  std::set<std::string> referenced;
  for (const auto& ref : scan.references) {
    EXPECT_FALSE(contains(ref, ":") || contains(ref, "..") || ref.empty() || ref[0] == '/')
        << "not a relative path inside the run folder: " << ref;
    EXPECT_TRUE(fs::is_regular_file(out / ref)) << "refers to a missing file: " << ref;
    referenced.insert(ref);
  }
  for (const char* picture :
       {"curves_loss.png", "curves_accuracy.png", "confusion_matrix.png", "top_losses.png"}) {
    ASSERT_TRUE(fs::exists(out / picture)) << picture;
    EXPECT_EQ(referenced.count(picture), 1u) << picture << " is not shown";
  }
  EXPECT_EQ(referenced.count("results.md"), 1u);

  // Class names escaped, never raw.
  EXPECT_TRUE(contains(html, "b&amp;c &lt;mid&gt;")) << html;
  EXPECT_FALSE(contains(html, odd)) << html;

  // One row marked exported: the summary's exported candidate, with the reason below the table.
  const auto summary = tlkit::Json::parse(tlkit::read_file(out / "summary.json"));
  std::string exported_name;
  for (const auto& row : summary.at("results").as_array())
    if (row.at("exported").as_bool()) exported_name = row.at("name").as_string();
  ASSERT_FALSE(exported_name.empty());
  const std::string marker = "<tr class=\"exported\">";
  const auto row = html.find(marker);
  ASSERT_NE(row, std::string::npos) << html;
  EXPECT_EQ(html.find(marker, row + 1), std::string::npos) << "two rows marked exported";
  const auto row_html = html.substr(row, html.find("</tr>", row) - row);
  EXPECT_TRUE(contains(row_html, exported_name)) << row_html;
  EXPECT_TRUE(contains(row_html, "<span class=\"badge\">exported</span>")) << row_html;
  EXPECT_TRUE(contains(html, "Exported: <code>model.pt</code>")) << html;
  EXPECT_FALSE(summary.at("exported_because").as_string().empty());

  // The per-class scores, the most confused pairs and the resolved config.
  EXPECT_TRUE(contains(html, "balanced accuracy")) << html;
  EXPECT_TRUE(contains(html, "<th>precision</th>")) << html;
  EXPECT_TRUE(contains(html, "Most confused classes")) << html;
  EXPECT_TRUE(contains(html, "<h2>Resolved config</h2>")) << html;
  EXPECT_TRUE(contains(html, "&quot;command&quot;: &quot;train&quot;")) << html;
}
