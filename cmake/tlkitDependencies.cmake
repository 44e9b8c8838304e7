# Finds tlkit's dependencies and defines tlkit_target_warnings().

find_package(Torch REQUIRED)
find_package(OpenMP REQUIRED)
find_package(spdlog REQUIRED)
find_package(ZLIB REQUIRED)  # gzip-compressed IDX files (tlkit::data)
if(TLKIT_BUILD_CLI)
  find_package(cxxopts REQUIRED)
endif()
if(TLKIT_WITH_OPENCV)
  find_package(OpenCV QUIET COMPONENTS core imgproc imgcodecs)
  if(NOT OpenCV_FOUND)
    message(STATUS "tlkit: OpenCV not found; image decoding and PNG plots are disabled")
    set(TLKIT_WITH_OPENCV OFF CACHE BOOL "" FORCE)
  endif()
endif()

# Warnings on our own targets only; LibTorch's headers are not ours to fix.
function(tlkit_target_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  endif()
endfunction()
