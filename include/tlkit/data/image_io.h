#pragma once
// Image files: the cheap scan-time check, decoding to tensors, and writing (all through OpenCV).

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace tlkit::data {

// True when the extension is one tlkit reads: jpg, jpeg, png, bmp, tif, tiff, webp (any case).
bool is_image_file_name(const std::filesystem::path& path);
// Walks a JPEG's marker segments (lengths followed, entropy-coded data scanned for the next
// marker, stray bytes skipped as libjpeg does) and says what is wrong when the file ends before
// the end-of-image marker of its own structure: a truncated file whose kept part happens to hold
// an FF D9 (an embedded thumbnail's) passes the scan's tail check but fails here. "" = complete.
std::string jpeg_structure_problem(const unsigned char* data, std::size_t size);

// The extensions is_image_file_name accepts, for messages: "jpg, jpeg, png, ...".
std::string image_extensions();

// The scan-time check: empty when the file looks like a complete image (known signature; JPEG
// end-of-image marker, PNG IEND chunk, BMP / WebP sizes, TIFF directory offset within the file),
// else the reason it does not, e.g. "JPEG without end-of-image marker (truncated?)".
std::string check_image_file(const std::filesystem::path& path);

// Decodes an image file to uint8 H x W x C, C = 1 (grey) or 3 (RGB): BGR becomes RGB, alpha is
// dropped, 16-bit images are scaled to 8 bits (v * 255 / 65535), float ones from [0, 1]. EXIF
// orientation is not applied (as PIL / torchvision do not). Throws tlkit::Error naming the file.
at::Tensor read_image(const std::filesystem::path& path);

// Decodes an encoded image held in memory; `name` is used in error messages.
at::Tensor decode_image(const std::vector<unsigned char>& bytes, const std::string& name);

// Writes a uint8 H x W x C image (C = 1 or 3, RGB) in the format its extension names (JPEG at
// `jpeg_quality`). Throws tlkit::Error when the format or the write fails.
void write_image(const std::filesystem::path& path, const at::Tensor& image, int jpeg_quality = 95);

}  // namespace tlkit::data
