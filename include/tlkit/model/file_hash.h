#pragma once
// SHA-256 of a file (FIPS 180-4, computed by OpenSSL), streamed in 4 MiB chunks; used to tie
// cached features to the exact model file that produced them.

#include <filesystem>
#include <string>

namespace tlkit::model {

// Lower-case hex digest; throws tlkit::Error when the file cannot be read.
std::string sha256_file(const std::filesystem::path& path);
std::string sha256_hex(const std::string& bytes);

}  // namespace tlkit::model
