#include "stores/common/lent_loops.h"

#include <boost/asio/post.hpp>
#include <condition_variable>
#include <mutex>

namespace idem::stores {

size_t LoopOfThisThread(const std::vector<boost::asio::io_context*>& loops) {
  for (size_t i = 0; i < loops.size(); ++i) {
    if (loops[i]->get_executor().running_in_this_thread()) return i;
  }
  return kNoLoop;
}

void RunOnEachLoop(const std::vector<boost::asio::io_context*>& loops,
                   const std::function<void(size_t)>& fn) {
  const size_t here = LoopOfThisThread(loops);
  std::vector<size_t> direct;
  std::vector<size_t> remote;
  for (size_t i = 0; i < loops.size(); ++i) {
    (i == here || loops[i]->stopped() ? direct : remote).push_back(i);
  }
  std::mutex mutex;
  std::condition_variable all_ran;
  size_t pending = remote.size();
  for (const size_t i : remote) {
    boost::asio::post(*loops[i], [&, i] {
      fn(i);
      std::lock_guard lock(mutex);
      if (--pending == 0) all_ran.notify_all();
    });
  }
  for (const size_t i : direct) fn(i);
  std::unique_lock lock(mutex);
  all_ran.wait(lock, [&] { return pending == 0; });
}

}  // namespace idem::stores
