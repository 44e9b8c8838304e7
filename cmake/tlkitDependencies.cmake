# Finds tlkit's dependencies and defines tlkit_target_warnings().

find_package(Torch REQUIRED)
# TORCH_LIBRARIES names some libraries by absolute path (libc10.so); link their imported targets
# instead, so the exported tlkit target holds no path of the machine it was built on.
set(TLKIT_TORCH_LIBRARIES)
foreach(lib IN LISTS TORCH_LIBRARIES)
  if(IS_ABSOLUTE "${lib}")
    get_filename_component(name "${lib}" NAME_WE)
    string(REGEX REPLACE "^lib" "" name "${name}")
    if(TARGET ${name})
      list(APPEND TLKIT_TORCH_LIBRARIES ${name})
    else()
      list(APPEND TLKIT_TORCH_LIBRARIES $<BUILD_INTERFACE:${lib}>)
    endif()
  else()
    list(APPEND TLKIT_TORCH_LIBRARIES ${lib})
  endif()
endforeach()
find_package(OpenMP REQUIRED)
# Data parallelism (--nproc, torchrun) on c10d: Gloo on the CPU, NCCL on CUDA.
set(TLKIT_WITH_NCCL OFF)
if(TLKIT_WITH_DISTRIBUTED)
  # c10d's ProcessGroupGloo header includes Gloo's headers, which LibTorch's packages do not all
  # ship (Debian: libgloo-dev).
  find_path(TLKIT_GLOO_INCLUDE_DIR gloo/config.h HINTS ${TORCH_INCLUDE_DIRS})
  if(NOT TLKIT_GLOO_INCLUDE_DIR)
    message(FATAL_ERROR "tlkit: Gloo's headers (gloo/config.h) were not found; on Debian install "
                        "libgloo-dev (scripts/setup.sh does), or set TLKIT_GLOO_INCLUDE_DIR, or "
                        "configure with -DTLKIT_WITH_DISTRIBUTED=OFF to build without data "
                        "parallelism (--nproc)")
  endif()
  # NCCL for CUDA data parallelism, where LibTorch was built with CUDA and ships c10d's NCCL header.
  if(TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
    unset(TLKIT_NCCL_HEADER CACHE)  # searched again at each configure (find_file's NO_CACHE is 3.21)
    find_file(TLKIT_NCCL_HEADER torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp
              HINTS ${TORCH_INCLUDE_DIRS})
    find_path(TLKIT_NCCL_INCLUDE_DIR nccl.h HINTS ${TORCH_INCLUDE_DIRS} ${CUDA_INCLUDE_DIRS})
    if(TLKIT_NCCL_HEADER AND TLKIT_NCCL_INCLUDE_DIR)
      set(TLKIT_WITH_NCCL ON)
    elseif(TLKIT_NCCL_HEADER)
      message(STATUS "tlkit: LibTorch has c10d's NCCL backend but nccl.h was not found (Debian: "
                     "libnccl-dev); building without NCCL")
    endif()
  endif()
  message(STATUS "tlkit: NCCL data parallelism ${TLKIT_WITH_NCCL} (Gloo: ON)")
else()
  message(STATUS "tlkit: data parallelism OFF (TLKIT_WITH_DISTRIBUTED=OFF: no c10d, Gloo or NCCL)")
endif()
find_package(spdlog REQUIRED)
find_package(ZLIB REQUIRED)  # gzip-compressed IDX files (tlkit::data)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)  # SHA-256 of model files (Debian: libssl-dev)
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
# libjpeg (Debian: libjpeg-dev) beside OpenCV: JPEGs decoded by it directly, its warnings seen (a
# JPEG whose data ends early is refused). Without it OpenCV decodes them and cannot tell.
set(TLKIT_WITH_LIBJPEG OFF)
if(TLKIT_WITH_OPENCV)
  find_package(JPEG QUIET)
  if(JPEG_FOUND)
    set(TLKIT_WITH_LIBJPEG ON)
  else()
    message(STATUS "tlkit: libjpeg not found (libjpeg-dev); truncated JPEGs cannot be told apart")
  endif()
endif()

# Warnings on our own targets only; LibTorch's headers are not ours to fix.
function(tlkit_target_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  endif()
endfunction()
