# Installation and packaging of libyoton, included from the root CMakeLists.txt after the
# library targets are defined.
#
#   cmake --install build [--prefix DIR]    installs
#     lib/libyoton.so.MAJOR.MINOR.PATCH (+ the SONAME and dev links), lib/libyoton.a,
#     include/yoton.h, bin/yoton (tools/CMakeLists.txt), share/man/man1/yoton.1,
#     lib/pkgconfig/yoton.pc, lib/cmake/yoton/{yotonConfig,yotonConfigVersion,yotonTargets}.cmake
#   cmake --build build --target docs        builds the API reference (build/docs/html) with
#                                            Doxygen, failing on any warning
#
# Consumers:  pkg-config --cflags --libs yoton            (add --static for libyoton.a)
#             find_package(yoton CONFIG REQUIRED)
#             target_link_libraries(app PRIVATE yoton::yoton)   # or yoton::yoton_static
#
# Every path is relative to the install prefix, so `cmake --install --prefix` and DESTDIR both
# give a working tree: the CMake package locates itself, and yoton.pc is written at install time
# with the prefix actually used.

include(CMakePackageConfigHelpers)

set(YOTON_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/yoton" CACHE STRING
    "Where the CMake package files are installed (relative to the prefix)")
mark_as_advanced(YOTON_CMAKE_DIR)

install(TARGETS yoton yoton_static EXPORT yotonTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
# (The include directory of the exported targets comes from their $<INSTALL_INTERFACE>.)
install(FILES include/yoton.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

# --- CMake package -------------------------------------------------------------------------
# yotonTargets.cmake defines yoton::yoton (shared) and yoton::yoton_static; the static one
# carries Threads::Threads, ZLIB::ZLIB and OpenSSL::Crypto in its link interface, which yotonConfig.cmake finds
# first (find_dependency).
install(EXPORT yotonTargets
  NAMESPACE yoton::
  DESTINATION ${YOTON_CMAKE_DIR}
  COMPONENT dev)
configure_package_config_file(
  ${CMAKE_CURRENT_SOURCE_DIR}/cmake/yotonConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/yotonConfig.cmake
  INSTALL_DESTINATION ${YOTON_CMAKE_DIR})
# 0.x releases make no compatibility promise across minor versions in SemVer, but the SONAME
# is the major version and the header says the same: SameMajorVersion, as the issue asks.
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/yotonConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/yotonConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/yotonConfigVersion.cmake
  DESTINATION ${YOTON_CMAKE_DIR}
  COMPONENT dev)

# --- pkg-config ----------------------------------------------------------------------------
# yoton.pc.in is configured twice: now, with everything but the prefix (which stays the
# placeholder @YT_PC_PREFIX@), and at install time with the prefix of that install, which
# `cmake --install --prefix DIR` may change after configuring.
set(YT_PC_PREFIX "@YT_PC_PREFIX@")
foreach(_d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_d}}")
    set(YT_PC_${_d} "${CMAKE_INSTALL_${_d}}")
  else()
    set(YT_PC_${_d} "\${prefix}/${CMAKE_INSTALL_${_d}}")
  endif()
endforeach()
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/yoton.pc.in
               ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/yoton.pc.in @ONLY)
install(CODE "
  set(YT_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/yoton.pc.in\"
                 \"${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/install/yoton.pc\" @ONLY)"
  COMPONENT dev)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/install/yoton.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT dev)

# --- Man page of the tool ------------------------------------------------------------------
if(YOTON_BUILD_TOOLS)
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/tools/yoton.1
    DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
    COMPONENT runtime)
endif()

# --- API reference -------------------------------------------------------------------------
# The reference is generated from the comments of include/yoton.h. The build fails on any
# Doxygen warning, so a public symbol without documentation breaks it (tests/install registers
# it as the CTest test doxygen_api).
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  set(YT_DOXYGEN_OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/docs")
  configure_file(${CMAKE_CURRENT_SOURCE_DIR}/Doxyfile.in ${CMAKE_CURRENT_BINARY_DIR}/Doxyfile
                 @ONLY)
  add_custom_target(docs
    COMMAND ${DOXYGEN_EXECUTABLE} ${CMAKE_CURRENT_BINARY_DIR}/Doxyfile
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
    COMMENT "API reference (Doxygen) in ${YT_DOXYGEN_OUTPUT}/html"
    VERBATIM)
else()
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E echo "doxygen not found: apt-get install doxygen, then re-run cmake"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
endif()
