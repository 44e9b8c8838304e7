// Image folders: decoding against PIL, layouts, odd names, corrupt files, splits, bad input.

#include <tlkit/core/atomic_file.h>
#include <tlkit/core/error.h>
#include <tlkit/core/logging.h>
#include <tlkit/data/image_folder.h>
#include <tlkit/data/loader.h>
#include <tlkit/data/subset.h>
#include <tlkit/data/transforms.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "data/data_test_util.h"
#include "model/fixtures.h"
#include "support/log_capture.h"

namespace fs = std::filesystem;
using namespace tlkit::data;
using tlkit::test::LogCapture;
using tlkit::test::TempDir;

namespace {

torch::Tensor tiny_image(int64_t channels, int64_t seed, int64_t height = 8, int64_t width = 10) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {height, width, channels}, torch::kUInt8);
}

// Writes `count` PNGs named 0.png, 1.png, ... into root/name.
void fill_class(const fs::path& root, const std::string& name, int count) {
  fs::create_directories(root / name);
  for (int i = 0; i < count; ++i)
    write_image(root / name / (std::to_string(i) + ".png"), tiny_image(3, i));
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const tlkit::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(DataImageFolder, DecodesEveryFormatLikePil) {
  const auto folder = tlkit::test::test_data_dir() / "data_images";
  for (const std::string name : {"rgb.png", "grey.png", "rgba.png", "grey16.png", "rgb.bmp",
                                 "rgb.tiff", "rgb.webp", "rgb.jpg", "grey.jpg"}) {
    const auto expected = tlkit::test::reference("pil_" + name);
    ASSERT_TRUE(expected.defined()) << name;
    EXPECT_EQ(check_image_file(folder / name), "") << name;
    const auto image = read_image(folder / name);
    ASSERT_EQ(image.sizes(), expected.sizes()) << name;
    // Lossless formats decode exactly; JPEG decoders may differ by rounding in the IDCT.
    const int tolerance = name.find(".jpg") != std::string::npos ? 2 : 0;
    EXPECT_LE((image.to(torch::kInt) - expected.to(torch::kInt)).abs().max().item<int>(), tolerance)
        << name;
  }
}

TEST(DataImageFolder, ScansSortedClassesMixedFormatsAndOddNames) {
  TempDir dir;
  const auto root = dir / "images";
  const std::string unicode_class =
      "\xc3\xbc"
      "n\xc3\xaf"
      "code \xe7\x8c\xab";  // "ünïcode 猫"
  fs::create_directories(root / "b cats" / "sub folder");
  fs::create_directories(root / "a-dogs" / ".cache");
  fs::create_directories(root / unicode_class);
  write_image(root / "b cats" / "photo 1.PNG", tiny_image(3, 1));
  write_image(root / "b cats" / "x.JPG", tiny_image(3, 2));
  write_image(root / "b cats" / "sub folder" / "deep.tiff", tiny_image(3, 3));
  write_image(root / "a-dogs" / "\xc3\xbc.bmp", tiny_image(1, 4));
  write_image(root / "a-dogs" / "w.webp", tiny_image(3, 5));
  write_image(root / "a-dogs" / "y.jpeg", tiny_image(3, 6));
  write_image(root / "a-dogs" / ".hidden.png", tiny_image(3, 7));  // hidden: ignored
  write_image(root / "a-dogs" / ".cache" / "inside.png",
              tiny_image(3, 8));  // hidden folder: ignored
  tlkit::test::write_bytes(root / "a-dogs" / "notes.txt",
                           "not an image");  // other extension: ignored
  write_image(root / unicode_class / "\xe7\x8c\xab 1.png", tiny_image(1, 9));
  const auto splits = open_source(root.string());
  ASSERT_TRUE(splits.train);
  EXPECT_FALSE(splits.val);
  const auto& data = *splits.train;
  EXPECT_EQ(data.classes(), (std::vector<std::string>{"a-dogs", "b cats", unicode_class}));
  ASSERT_EQ(data.size(), 7u);
  EXPECT_EQ(data.skipped(), 0u);
  EXPECT_EQ(data.labels(), (std::vector<int64_t>{0, 0, 0, 1, 1, 1, 2}));
  for (size_t i = 0; i < data.size(); ++i) {
    const auto sample = data.get(i);
    EXPECT_EQ(sample.image.size(0), 8) << sample.source;
    EXPECT_TRUE(fs::exists(sample.source)) << sample.source;
  }
  const auto bmp = data.get(2);  // UTF-8 "ü.bmp" sorts after "w.webp" and "y.jpeg" (byte order)
  EXPECT_EQ(bmp.image.sizes(), (torch::IntArrayRef{8, 10, 1}));
  EXPECT_TRUE(torch::equal(bmp.image, tiny_image(1, 4)));  // grey stays one channel, lossless
  EXPECT_TRUE(torch::equal(data.get(3).image, tiny_image(3, 1)));  // "photo 1.PNG"
  EXPECT_NE(data.describe().find("7 images, 3 classes"), std::string::npos) << data.describe();
}

// The same classes, indices and sample order as torchvision's ImageFolder on the same folder
// (nested folders whose sorted-path order differs from a sort of whole paths, upper-case and
// .ppm/.pgm extensions, a symlinked folder); hidden entries are the one difference, and a hidden
// class folder is warned about.
TEST(DataImageFolder, MatchesTorchvisionsImageFolderLessHiddenEntries) {
  TempDir dir;
  const auto root = dir / "images";
  fs::create_directories(root / "cats" / "b");
  fs::create_directories(root / "cats" / "a z");
  fs::create_directories(root / "dogs");
  fs::create_directories(dir / "elsewhere");
  write_image(root / "cats" / "z.png", tiny_image(3, 1));
  write_image(root / "cats" / "b" / "a.png", tiny_image(3, 2));  // whole-path sort: before z.png
  write_image(root / "cats" / "b.PNG", tiny_image(3, 3));
  write_image(root / "cats" / "a z" / "q.ppm", tiny_image(3, 4));
  write_image(root / "cats" / "a.pgm", tiny_image(1, 5));
  write_image(root / "dogs" / "d.JPEG", tiny_image(3, 6));
  write_image(root / "dogs" / "c.bmp", tiny_image(3, 7));
  write_image(dir / "elsewhere" / "e.png", tiny_image(3, 8));
  fs::create_directory_symlink(dir / "elsewhere", root / "dogs" / "linked");
  const std::string script =
      "from torchvision.datasets import ImageFolder\n"
      "d = ImageFolder('{dir}/images')\n"
      "print('classes', *d.classes, sep='|')\n"
      "for path, label in d.samples: print(label, path, sep='|')\n";
  const auto python = tlkit::test::run_python(script, dir.path());
  ASSERT_EQ(python.exit_code, 0) << python.output;
  auto tlkit_listing = [&] {
    const auto data = open_source(root.string()).train;
    std::string text = "classes";
    for (const auto& name : data->classes()) text += "|" + name;
    text += "\n";
    for (size_t i = 0; i < data->size(); ++i)
      text += std::to_string(data->labels()[i]) + "|" + data->source(i) + "\n";
    return text;
  };
  const auto listing = tlkit_listing();
  EXPECT_EQ(listing, python.output);
  EXPECT_LT(listing.find("cats/z.png"), listing.find("cats/b/a.png")) << listing;  // folder order

  // Hidden entries: torchvision would take ".ipynb_checkpoints" for class 0 (and "._x.png" for a
  // cat); tlkit leaves them out, says so, and keeps the listing above.
  fs::create_directories(root / ".ipynb_checkpoints");
  write_image(root / ".ipynb_checkpoints" / "n.png", tiny_image(3, 9));
  tlkit::test::write_bytes(root / "cats" / "._x.png", "AppleDouble fork");
  LogCapture capture;
  EXPECT_EQ(tlkit_listing(), listing);
  std::string log;
  for (const auto& line : capture.lines()) log += line + "\n";
  EXPECT_NE(log.find("ignoring the hidden folder"), std::string::npos) << log;
  EXPECT_NE(log.find("left out 1 hidden"), std::string::npos) << log;
}

TEST(DataImageFolder, CorruptFilesAreSkippedWithAWarningOrRejectedWhenStrict) {
  TempDir dir;
  fill_class(dir.path(), "a", 2);
  fill_class(dir.path(), "b", 2);
  write_image(dir / "a" / "good.jpg", tiny_image(3, 3, 40, 40));
  const auto jpeg = tlkit::test::file_bytes(dir / "a" / "good.jpg");
  const auto png = tlkit::test::file_bytes(dir / "a" / "0.png");
  tlkit::test::write_bytes(dir / "a" / "text.jpg", "hello, I am not a picture");
  tlkit::test::write_bytes(dir / "a" / "cut.jpg", jpeg.substr(0, jpeg.size() / 2));
  tlkit::test::write_bytes(dir / "b" / "cut.png", png.substr(0, png.size() - 20));
  tlkit::test::write_bytes(dir / "b" / "empty.png", "");
  LogCapture capture;
  ImageFolder folder(dir.path());
  EXPECT_EQ(folder.size(), 5u);
  EXPECT_EQ(folder.skipped(), 4u);
  EXPECT_NE(folder.describe().find("4 corrupt files skipped"), std::string::npos)
      << folder.describe();
  std::string log;
  for (const auto& line : capture.lines()) log += line + "\n";
  for (const auto& name : {"a/text.jpg", "a/cut.jpg", "b/cut.png", "b/empty.png"}) {
    EXPECT_NE(log.find((dir.path() / name).string()), std::string::npos)
        << name << " not named in:\n"
        << log;
  }
  const auto message = error_of([&] { ImageFolder(dir.path(), true); });
  EXPECT_NE(message.find("corrupt image"), std::string::npos) << message;
  EXPECT_NE(message.find("strict"), std::string::npos) << message;
  SourceOptions strict;
  strict.strict = true;
  EXPECT_THROW(open_source(dir.path().string(), strict), tlkit::Error);
}

// A file that passes the scan but does not decode is never garbage in a batch: the loader leaves
// it out with one warning naming it (every epoch, warned once), or fails naming it when strict.
TEST(DataImageFolder, AFileThatFailsToDecodeIsSkippedAtLoadTimeOrAnErrorWhenStrict) {
  TempDir dir;
  fill_class(dir.path(), "a", 3);
  // A JPEG signature and end marker around junk passes the scan but cannot be decoded.
  tlkit::test::write_bytes(dir / "a" / "1x.jpg",
                           std::string("\xFF\xD8\xFF\xE0junkjunkjunk\xFF\xD9", 18));
  auto folder = std::make_shared<ImageFolder>(dir.path());
  ASSERT_EQ(folder->size(), 4u);
  const auto message = error_of([&] { folder->get(2); });  // "1.png" < "1x.jpg"
  EXPECT_NE(message.find("1x.jpg"), std::string::npos) << message;
  LoaderOptions options;
  options.shuffle = false;
  options.batch_size = 4;
  {
    LogCapture capture;
    DataLoader loader(folder, eval_transform(0, 8), options);
    for (int epoch = 0; epoch < 2; ++epoch) {
      loader.epoch(static_cast<size_t>(epoch));
      const auto batch = loader.next();
      ASSERT_TRUE(batch.has_value());
      EXPECT_EQ(batch->images.size(0), 3);
      EXPECT_EQ(batch->labels.size(0), 3);
      EXPECT_EQ(batch->indices, (std::vector<size_t>{0, 1, 3}));
    }
    EXPECT_EQ(loader.skipped_unreadable(), 1u);
    size_t warnings = 0;
    for (const auto& line : capture.lines())
      if (line.find("skipping") != std::string::npos && line.find("1x.jpg") != std::string::npos)
        ++warnings;
    EXPECT_EQ(warnings, 1u);
  }
  options.skip_unreadable = false;
  DataLoader strict(folder, eval_transform(0, 8), options);
  const auto loader_message = error_of([&] { strict.next(); });
  EXPECT_NE(loader_message.find("loading batch 0 of epoch 0, sample 2"), std::string::npos)
      << loader_message;
  EXPECT_NE(loader_message.find("1x.jpg"), std::string::npos) << loader_message;
}

// A JPEG cut in half whose kept part holds an FF D9 (its EXIF thumbnail's end) passes the scan's
// tail check, and libjpeg would decode it with a warning only, the lost half flat grey. The
// marker walk at decode time refuses it; the complete file still decodes.
TEST(DataImageFolder, ATruncatedJpegWithAThumbnailIsNotDecodedToGrey) {
  TempDir dir;
  write_image(dir / "main.jpg", tiny_image(3, 1, 64, 64), 95);
  write_image(dir / "thumb.jpg", tiny_image(3, 2, 8, 8), 90);
  const auto main = tlkit::read_file(dir / "main.jpg"), thumb = tlkit::read_file(dir / "thumb.jpg");
  // SOI, APP1 "Exif" holding the thumbnail, then the main image's segments after its own SOI.
  const std::string payload = std::string("Exif\0\0", 6) + thumb;
  const auto length = payload.size() + 2;
  const std::string app1 = std::string("\xFF\xE1", 2) + static_cast<char>(length >> 8) +
                           static_cast<char>(length & 0xFF) + payload;
  const std::string whole = main.substr(0, 2) + app1 + main.substr(2);
  tlkit::test::write_bytes(dir / "whole.jpg", whole);
  EXPECT_EQ(check_image_file(dir / "whole.jpg"), "");
  EXPECT_TRUE(torch::equal(read_image(dir / "whole.jpg"), read_image(dir / "main.jpg")));
  const auto cut = whole.substr(0, 2 + app1.size() + (main.size() - 2) / 2);
  ASSERT_LT(cut.size() - (2 + app1.size()), 4096u);  // the thumbnail's FF D9 is in the tail
  tlkit::test::write_bytes(dir / "cut.jpg", cut);
  EXPECT_EQ(check_image_file(dir / "cut.jpg"), "");  // the cheap scan cannot tell
  const auto message = error_of([&] { read_image(dir / "cut.jpg"); });
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_NE(jpeg_structure_problem(reinterpret_cast<const unsigned char*>(cut.data()), cut.size()),
            "");
}

// JPEGs are decoded to the pixels OpenCV gives (grey and colour, odd sizes, optimised Huffman
// tables, progressive); one whose image data stops early but ends with a bare FF D9 (a cut file
// with an end marker added, which the marker walk accepts) is refused where OpenCV returns it with
// the missing part grey.
TEST(DataImageFolder, JpegsDecodeAsOpenCvDoesAndAnEarlyEndOfDataIsRefused) {
  TempDir dir;
  torch::manual_seed(5);
  const auto opencv_rgb = [](const std::string& bytes) {
    std::vector<unsigned char> data(bytes.begin(), bytes.end());
    cv::Mat raw = cv::imdecode(data, cv::IMREAD_UNCHANGED);
    if (raw.empty()) return torch::Tensor();
    if (raw.channels() == 3) cv::cvtColor(raw, raw, cv::COLOR_BGR2RGB);
    return torch::from_blob(raw.data, {raw.rows, raw.cols, raw.channels()}, torch::kByte).clone();
  };
  int cases = 0;
  for (const int channels : {1, 3}) {
    for (const auto& [height, width] : {std::pair{37, 53}, std::pair{64, 64}, std::pair{9, 130}}) {
      // Smooth content plus noise: every coefficient band in use.
      auto image = (torch::linspace(0, 200, width).view({1, width, 1}) +
                    torch::randint(0, 50, {height, width, channels}, torch::kFloat))
                       .clamp(0, 255)
                       .to(torch::kByte);
      for (const auto& params : std::vector<std::vector<int>>{
               {cv::IMWRITE_JPEG_QUALITY, 90},
               {cv::IMWRITE_JPEG_QUALITY, 60, cv::IMWRITE_JPEG_OPTIMIZE, 1},
               {cv::IMWRITE_JPEG_QUALITY, 80, cv::IMWRITE_JPEG_PROGRESSIVE, 1}}) {
        cv::Mat mat(height, width, CV_8UC(channels), image.data_ptr<uint8_t>());
        cv::Mat bgr;
        if (channels == 3)
          cv::cvtColor(mat, bgr, cv::COLOR_RGB2BGR);
        else
          bgr = mat;
        std::vector<unsigned char> encoded;
        ASSERT_TRUE(cv::imencode(".jpg", bgr, encoded, params));
        const std::string bytes(encoded.begin(), encoded.end());
        const auto path = dir / ("case" + std::to_string(cases++) + ".jpg");
        tlkit::test::write_bytes(path, bytes);
        const auto ours = read_image(path);
        const auto theirs = opencv_rgb(bytes);
        ASSERT_EQ(ours.sizes(), theirs.sizes()) << path;
        EXPECT_TRUE(torch::equal(ours, theirs)) << path;
      }
    }
  }
  // Cut in the middle of its entropy-coded data, then FF D9.
  write_image(dir / "photo.jpg", tiny_image(3, 1, 96, 96), 95);
  const auto whole = tlkit::read_file(dir / "photo.jpg");
  std::string cut = whole.substr(0, whole.size() / 2);
  while (!cut.empty() && static_cast<unsigned char>(cut.back()) == 0xFF) cut.pop_back();
  cut += "\xFF\xD9";
  tlkit::test::write_bytes(dir / "cut.jpg", cut);
  EXPECT_EQ(check_image_file(dir / "cut.jpg"), "");
  EXPECT_EQ(jpeg_structure_problem(reinterpret_cast<const unsigned char*>(cut.data()), cut.size()),
            "");
  const auto grey = opencv_rgb(cut);  // what OpenCV alone would train on
  ASSERT_TRUE(grey.defined());
  EXPECT_EQ(grey.sizes(), read_image(dir / "photo.jpg").sizes());
  const auto message = error_of([&] { read_image(dir / "cut.jpg"); });
  EXPECT_NE(message.find("cut.jpg"), std::string::npos) << message;
  EXPECT_NE(message.find("ends early"), std::string::npos) << message;
  // In a folder: left out with a warning in the default mode, an error with strict loading.
  const auto root = dir / "folder";
  fill_class(root, "a", 2);
  fill_class(root, "b", 2);
  fs::copy_file(dir / "cut.jpg", root / "b" / "cut.jpg");
  auto folder = std::make_shared<ImageFolder>(root);
  LoaderOptions options;
  options.batch_size = 8;
  LogCapture log;
  DataLoader loader(folder, eval_transform(0, 8), options);
  loader.epoch(0);
  std::int64_t seen = 0;
  while (auto batch = loader.next()) seen += batch->labels.size(0);
  EXPECT_EQ(seen, static_cast<std::int64_t>(folder->size()) - 1);
  EXPECT_EQ(loader.skipped_unreadable(), 1u);
  EXPECT_NE(log.text().find("ends early"), std::string::npos) << log.text();
}

// Reruns reuse the scan's checks of unchanged files, and of nothing else: a file changed in
// place (same size), replaced by rename, added, removed or moved with its folder is checked anew;
// a damaged cache file or an unwritable cache folder is the same as none.
TEST(DataImageFolder, TheScanReusesChecksOfUnchangedFilesOnly) {
  TempDir dir;
  struct CacheDir {  // TLKIT_CACHE_DIR for this test only
    explicit CacheDir(const fs::path& path) { ::setenv("TLKIT_CACHE_DIR", path.c_str(), 1); }
    ~CacheDir() { ::unsetenv("TLKIT_CACHE_DIR"); }
  } cache_dir(dir / "cache");
  ASSERT_EQ(scan_cache_folder(), dir / "cache" / "scans");
  const auto root = dir / "data";
  fill_class(root, "a", 3);
  fill_class(root, "b", 3);
  // Changes must be older than the racy window (1 s) to be trusted from the cache.
  const auto age = [](const fs::path& path) {
    fs::last_write_time(path, fs::last_write_time(path) - std::chrono::hours(1));
  };
  for (const auto& entry : fs::recursive_directory_iterator(root)) age(entry.path());
  const auto scan = [&] { return ImageFolder(root); };
  auto first = scan();
  EXPECT_EQ(first.files_checked(), 6u);
  EXPECT_EQ(first.files_reused(), 0u);
  // ctime cannot be set back: the files are trusted once the cache is newer than them.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(scan().files_checked(), 6u);  // all six were racy: checked, cache rewritten
  auto third = scan();
  EXPECT_EQ(third.files_checked(), 0u);
  EXPECT_EQ(third.files_reused(), 6u);
  EXPECT_EQ(third.size(), 6u);

  // Corrupt a/1.png in place, same size: its change time moves, so it is checked and skipped.
  auto bytes = tlkit::test::file_bytes(root / "a" / "1.png");
  std::string garbage(bytes.size(), 'x');
  tlkit::test::write_bytes(root / "a" / "1.png", garbage);
  auto changed = scan();
  EXPECT_EQ(changed.files_checked(), 1u);
  EXPECT_EQ(changed.size(), 5u);
  EXPECT_EQ(changed.skipped(), 1u);
  // Repaired by rename over it: checked again and back in.
  tlkit::test::write_bytes(root / "a" / "new.tmp", bytes);
  fs::rename(root / "a" / "new.tmp", root / "a" / "1.png");
  auto repaired = scan();
  EXPECT_EQ(repaired.size(), 6u);
  EXPECT_EQ(repaired.skipped(), 0u);
  // Added and removed files are always seen (the folder is listed every time).
  write_image(root / "b" / "extra.png", tiny_image(3, 9));
  fs::remove(root / "a" / "0.png");
  auto listed = scan();
  EXPECT_EQ(listed.size(), 6u);
  std::vector<std::string> names;
  for (size_t i = 0; i < listed.size(); ++i) names.push_back(listed.file(i).filename().string());
  EXPECT_EQ(names,
            (std::vector<std::string>{"1.png", "2.png", "0.png", "1.png", "2.png", "extra.png"}));
  // A moved folder is another folder: a fresh scan, same result.
  fs::rename(root, dir / "moved");
  ImageFolder moved(dir / "moved");
  EXPECT_EQ(moved.files_reused(), 0u);
  EXPECT_EQ(moved.size(), 6u);
  // A damaged cache file is ignored, never trusted.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ImageFolder rescanned(dir / "moved");
  EXPECT_EQ(rescanned.size(), 6u);
  for (const auto& entry : fs::directory_iterator(dir / "cache" / "scans")) {
    auto cache = tlkit::test::file_bytes(entry.path());
    tlkit::test::write_bytes(entry.path(), cache.substr(0, cache.size() / 2));
  }
  ImageFolder damaged(dir / "moved");
  EXPECT_EQ(damaged.files_reused(), 0u);
  EXPECT_EQ(damaged.size(), 6u);
  // Caching off, or a cache folder that cannot be written: the scan works the same.
  ::setenv("TLKIT_CACHE_DIR", "off", 1);
  EXPECT_TRUE(scan_cache_folder().empty());
  EXPECT_EQ(ImageFolder(dir / "moved").files_checked(), 6u);
  tlkit::test::write_bytes(dir / "plain_file", "not a folder");
  ::setenv("TLKIT_CACHE_DIR", (dir / "plain_file").c_str(), 1);
  EXPECT_EQ(ImageFolder(dir / "moved").size(), 6u);
}

TEST(DataImageFolder, BadLayoutsAreClearErrors) {
  TempDir dir;
  auto message = error_of([&] { open_source((dir / "missing").string()); });
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
  write_image(dir / "loose.png", tiny_image(3, 1));
  message = error_of([&] { open_source(dir.path().string()); });
  EXPECT_NE(message.find("no class sub-folders"), std::string::npos) << message;
  EXPECT_NE(message.find("1 images lie directly inside"), std::string::npos) << message;
  fill_class(dir.path(), "cat", 1);
  fs::create_directories(dir / "dog");
  message = error_of([&] { open_source(dir.path().string()); });
  EXPECT_NE(message.find((dir / "dog").string()), std::string::npos) << message;
  EXPECT_NE(message.find("holds no readable images"), std::string::npos) << message;
  message = error_of([&] { open_source("xyz:" + dir.path().string()); });
  EXPECT_NE(message.find("unknown data source prefix 'xyz:'"), std::string::npos) << message;
  EXPECT_NE(message.find("cifar10:DIR"), std::string::npos) << message;
}

TEST(DataImageFolder, TrainValTestTreesAreDetected) {
  TempDir dir;
  fill_class(dir / "train", "a", 3);
  fill_class(dir / "train", "b", 4);
  fill_class(dir / "val", "a", 2);
  fill_class(dir / "val", "b", 1);
  fill_class(dir / "test", "b", 2);  // test lacks class a: b keeps index 1
  SourceOptions options;
  options.val_split = 0.5;  // ignored: val/ exists
  const auto splits = open_source(dir.path().string(), options);
  ASSERT_TRUE(splits.train && splits.val && splits.test);
  EXPECT_EQ(splits.train->size(), 7u);
  EXPECT_EQ(splits.val->size(), 3u);
  EXPECT_EQ(splits.test->labels(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(splits.test->classes(), (std::vector<std::string>{"a", "b"}));
  fill_class(dir / "val", "c", 1);
  const auto message = error_of([&] { open_source(dir.path().string()); });
  EXPECT_NE(message.find("not one of the training classes"), std::string::npos) << message;
}

TEST(DataImageFolder, StratifiedValSplitAndLimitAreSeeded) {
  TempDir dir;
  fill_class(dir.path(), "a", 10);
  fill_class(dir.path(), "b", 20);
  SourceOptions options;
  options.val_split = 0.3;
  options.seed = 5;
  const auto first = open_source(dir.path().string(), options);
  ASSERT_TRUE(first.val);
  EXPECT_EQ(class_counts(*first.val), (std::vector<size_t>{3, 6}));
  EXPECT_EQ(class_counts(*first.train), (std::vector<size_t>{7, 14}));
  const auto again = open_source(dir.path().string(), options);
  EXPECT_EQ(std::dynamic_pointer_cast<Subset>(again.val)->indices(),
            std::dynamic_pointer_cast<Subset>(first.val)->indices());
  options.seed = 6;
  const auto other = open_source(dir.path().string(), options);
  EXPECT_NE(std::dynamic_pointer_cast<Subset>(other.val)->indices(),
            std::dynamic_pointer_cast<Subset>(first.val)->indices());
  options.limit = 6;
  const auto limited = open_source(dir.path().string(), options);
  EXPECT_EQ(class_counts(*limited.train), (std::vector<size_t>{2, 4}));
  EXPECT_EQ(limited.val->size(), 6u);
}

TEST(DataImageFolder, LoaderBatchesAugmentedImages) {
  TempDir dir;
  fill_class(dir.path(), "a", 5);
  fill_class(dir.path(), "b", 6);
  write_image(dir / "a" / "grey.png", tiny_image(1, 30, 20, 30));
  LoaderOptions options;
  options.batch_size = 4;
  options.workers = 2;
  DataLoader loader(open_source(dir.path().string()).train, train_transform(6), options);
  size_t seen = 0;
  for (auto& batch : loader) {
    EXPECT_EQ(batch.images.size(1), 3);
    EXPECT_EQ(batch.images.size(2), 6);
    EXPECT_EQ(batch.images.scalar_type(), torch::kFloat);
    seen += batch.sources.size();
  }
  EXPECT_EQ(seen, 12u);
}
