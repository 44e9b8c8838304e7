#include <tlkit/model/file_hash.h>

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include <tlkit/core/error.h>

namespace tlkit::model {
namespace {

// Files are read in 4 MiB chunks: few reads and digest calls for a model of hundreds of MB.
constexpr size_t kChunkBytes = size_t{4} << 20;

// OpenSSL's SHA-256 through its EVP interface (uses the CPU's SHA extensions where present).
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    TLKIT_CHECK(ctx_ != nullptr, "OpenSSL could not allocate a digest context");
    TLKIT_CHECK(EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1,
                "OpenSSL could not start a SHA-256 digest");
  }

  void update(const void* data, size_t size) {
    TLKIT_CHECK(EVP_DigestUpdate(ctx_.get(), data, size) == 1, "OpenSSL's SHA-256 update failed");
  }

  std::string hex_digest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    TLKIT_CHECK(EVP_DigestFinal_ex(ctx_.get(), digest, &size) == 1,
                "OpenSSL's SHA-256 finalisation failed");
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(2 * size);
    for (unsigned int i = 0; i < size; ++i) {
      out += digits[digest[i] >> 4];
      out += digits[digest[i] & 0xF];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

}  // namespace

std::string sha256_hex(const std::string& bytes) {
  Sha256 hash;
  hash.update(bytes.data(), bytes.size());
  return hash.hex_digest();
}

std::string sha256_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  TLKIT_CHECK(in.is_open(), "cannot read '", path.string(), "' to hash it: ", std::strerror(errno));
  Sha256 hash;
  std::vector<char> buffer(kChunkBytes);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  TLKIT_CHECK(in.eof(), "reading '", path.string(), "' failed while hashing it");
  return hash.hex_digest();
}

}  // namespace tlkit::model
