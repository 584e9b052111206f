// FUZZ_CHECK: a property of a fuzz target. Unlike assert() it stays on in
// release builds, so the gcc-built corpus replay tests check it too; a
// failure aborts, which libFuzzer reports as a crash with its input.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                   \
  do {                                                                          \
    if (!(condition)) {                                                         \
      std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__,       \
                   __LINE__, #condition);                                       \
      std::abort();                                                             \
    }                                                                           \
  } while (false)
