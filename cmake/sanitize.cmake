# IDEM_SANITIZE: instruments every target of the build (make test-asan,
# make test-tsan). IDEM_FUZZ: libFuzzer coverage plus ASan and UBSan for
# the fuzz build (make fuzz); only fuzz/CMakeLists.txt links the fuzzer
# runtime itself.
if(IDEM_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "IDEM_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(IDEM_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(IDEM_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC warns that TSan does not model std::atomic_thread_fence (used in
    # Asio and libstdc++ headers); that is a known TSan limit, not our bug.
    add_compile_options(-Wno-tsan)
  endif()
elseif(NOT IDEM_SANITIZE STREQUAL "")
  message(FATAL_ERROR "IDEM_SANITIZE must be empty, address or thread, not ${IDEM_SANITIZE}")
endif()
