#pragma once
// CSV as RFC 4180 writes it: a field holding a comma, a double quote, CR or LF is quoted, its
// quotes doubled; records end with LF. The reader takes the same text back (a quoted field may
// span lines) and says where the last complete record ends, so an append-only file cut short by a
// kill can be trimmed to its whole records.

#include <cstddef>
#include <string>
#include <vector>

namespace tlkit {

// `text` as one CSV field, quoted only when it needs to be.
std::string csv_field(const std::string& text);

// The fields joined into one record, LF-terminated.
std::string csv_record(const std::vector<std::string>& fields);

struct CsvRecords {
  std::vector<std::vector<std::string>> records;  // the complete records (LF or CRLF ended)
  std::size_t complete_bytes = 0;  // where the last complete record ends; the rest is partial
};

// The complete records of `text`; a last record without its line end is left out (and counted
// in neither `records` nor `complete_bytes`).
CsvRecords parse_csv(const std::string& text);

}  // namespace tlkit
