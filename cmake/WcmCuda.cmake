# The CUDA backend (src/cuda/): WCM_CUDA=ON builds it or fails, OFF leaves
# it out (the CPU-only library, built exactly as without this file), AUTO
# (the default) builds it when nvcc and cuDNN are found. cuDNN is looked for
# under CUDNN_ROOT (CMake or environment variable), the CUDA toolkit, and a
# Python environment's nvidia/cudnn wheel (pass its folder as CUDNN_ROOT).
#
# Sets WCM_HAVE_CUDA, WCM_CUDNN_INCLUDE_DIR and WCM_CUDNN_LIBRARY, and the
# function wcm_add_cuda(objects targets...) that adds the backend to the
# library's object target and links the packaged targets.
set(WCM_CUDA AUTO CACHE STRING "CUDA backend: ON, OFF or AUTO (on when nvcc and cuDNN are found)")
set_property(CACHE WCM_CUDA PROPERTY STRINGS ON OFF AUTO)
string(TOUPPER "${WCM_CUDA}" WCM_CUDA_MODE)
if(NOT WCM_CUDA_MODE MATCHES "^(ON|OFF|AUTO)$")
  message(FATAL_ERROR "WCM_CUDA must be ON, OFF or AUTO, got '${WCM_CUDA}'")
endif()
set(WCM_HAVE_CUDA OFF)

function(wcm_cuda_unavailable why)
  if(WCM_CUDA_MODE STREQUAL "ON")
    message(FATAL_ERROR "WCM_CUDA=ON but ${why}")
  endif()
  message(STATUS "CUDA backend: off (${why})")
endfunction()

if(NOT WCM_CUDA_MODE STREQUAL "OFF")
  # Hopper (sm_90) machine code plus compute_90 PTX that newer GPUs JIT-compile.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    wcm_cuda_unavailable("no CUDA compiler (nvcc) was found")
  else()
    find_package(CUDAToolkit QUIET)
    set(hints ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_ROOT} ${CUDAToolkit_TARGET_DIR})
    find_path(WCM_CUDNN_INCLUDE_DIR cudnn.h HINTS ${hints} ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
    # A pip wheel ships only the versioned file name.
    find_library(WCM_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${hints} PATH_SUFFIXES lib64 lib)
    if(NOT CUDAToolkit_FOUND)
      wcm_cuda_unavailable("the CUDA toolkit (CUDAToolkit) was not found")
    elseif(NOT WCM_CUDNN_INCLUDE_DIR OR NOT WCM_CUDNN_LIBRARY)
      wcm_cuda_unavailable("cuDNN was not found (set CUDNN_ROOT to the folder holding include/cudnn.h and lib/)")
    else()
      # One CUDA runtime for everything: the shared libcudart that CUDA::cudart names.
      set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
      enable_language(CUDA)
      set(WCM_HAVE_CUDA ON)
      # Installed programs and the shared library find cudart and cuDNN where they were linked.
      set(CMAKE_INSTALL_RPATH_USE_LINK_PATH TRUE)
      get_filename_component(cudnn_dir ${WCM_CUDNN_LIBRARY} DIRECTORY)
      set(WCM_PC_CUDA_LIBS " -L${CUDAToolkit_LIBRARY_DIR} -lcudart -L${cudnn_dir} -lcudnn -lstdc++")
      message(STATUS "CUDA backend: on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}, "
                     "cuDNN ${WCM_CUDNN_LIBRARY})")
    endif()
  endif()
endif()

function(wcm_add_cuda objects)
  file(GLOB host_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cuda/*.c)
  file(GLOB kernel_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cuda/*.cu)
  target_sources(${objects} PRIVATE ${host_sources})
  target_compile_definitions(${objects} PRIVATE WCM_HAVE_CUDA)
  target_include_directories(${objects} SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS} ${WCM_CUDNN_INCLUDE_DIR})
  # Kernels: no contraction of a*b+c into FMA and IEEE division and square
  # roots, so that elementwise ops give the CPU's bits. The directory's C
  # options (warnings, sanitizers) are gcc's, not nvcc's: replaced here.
  add_library(wcm_cuda_kernels OBJECT ${kernel_sources})
  set_property(TARGET wcm_cuda_kernels PROPERTY COMPILE_OPTIONS "")
  target_compile_options(wcm_cuda_kernels PRIVATE --fmad=false -prec-div=true -prec-sqrt=true -O3
                         -Werror=all-warnings -Xcompiler=-Wall,-Wextra,-Werror)
  target_include_directories(wcm_cuda_kernels PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include
                             ${CMAKE_BINARY_DIR}/include)
  set_target_properties(wcm_cuda_kernels PROPERTIES POSITION_INDEPENDENT_CODE ON)
  foreach(target ${ARGN})
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:wcm_cuda_kernels>)
    target_link_libraries(${target} PRIVATE CUDA::cudart ${WCM_CUDNN_LIBRARY})
  endforeach()
endfunction()
