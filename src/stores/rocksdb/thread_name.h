// Names the calling thread (at most 15 characters), so `top -H` and
// /proc/PID/task/*/comm tell the store's threads apart.
#pragma once

#include <pthread.h>

namespace idem::rocksdb_store {

inline void NameThisThread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace idem::rocksdb_store
