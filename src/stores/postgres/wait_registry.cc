#include "stores/postgres/wait_registry.h"

#include <utility>

#include "stores/common/completed_cache.h"

namespace idem::pg {

void WaitRegistry::Add(const std::string& key, std::chrono::milliseconds timeout,
                       Done done) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = keys_.try_emplace(key);
  if (inserted) {
    it->second.hash = stores::KeyHash(key);
    key_by_hash_[it->second.hash] = key;
  }
  const uint64_t id = next_id_++;
  auto timer = std::make_unique<boost::asio::steady_timer>(io_, timeout);
  // Armed under the lock, as every other use of the timer is, so the timer
  // object is never touched by two threads at once.
  timer->async_wait([this, key, id](boost::system::error_code ec) {
    if (!ec) Expire(key, id);
  });
  it->second.waiters.push_back(Waiter{id, std::move(done), std::move(timer)});
}

void WaitRegistry::Expire(const std::string& key, uint64_t id) {
  Done done;
  {
    std::lock_guard lock(mutex_);
    auto it = keys_.find(key);
    if (it == keys_.end()) return;
    auto& list = it->second.waiters;
    for (auto w = list.begin(); w != list.end(); ++w) {
      if (w->id != id) continue;
      done = std::move(w->done);
      list.erase(w);
      break;
    }
    DropIfIdle(it);
  }
  if (done) done(DeadlineExceeded("the operation is still in flight"));
}

std::vector<WaitRegistry::Done> WaitRegistry::TakeAll(const std::string& key) {
  std::vector<Done> out;
  std::lock_guard lock(mutex_);
  auto it = keys_.find(key);
  if (it == keys_.end()) return out;
  for (auto& waiter : it->second.waiters) {
    waiter.timer->cancel();
    out.push_back(std::move(waiter.done));
  }
  it->second.waiters.clear();
  DropIfIdle(it);
  return out;
}

std::vector<WaitRegistry::Done> WaitRegistry::TakeEverything() {
  std::vector<Done> out;
  std::lock_guard lock(mutex_);
  for (auto& [key, entry] : keys_) {
    for (auto& waiter : entry.waiters) {
      waiter.timer->cancel();
      out.push_back(std::move(waiter.done));
    }
  }
  keys_.clear();
  key_by_hash_.clear();
  return out;
}

std::vector<std::string> WaitRegistry::Keys() {
  std::vector<std::string> out;
  std::lock_guard lock(mutex_);
  for (const auto& [key, entry] : keys_) {
    if (!entry.waiters.empty()) out.push_back(key);
  }
  return out;
}

std::optional<std::string> WaitRegistry::KeyForHash(std::string_view hex_sha256) {
  std::lock_guard lock(mutex_);
  auto it = key_by_hash_.find(std::string(hex_sha256));
  if (it == key_by_hash_.end()) return std::nullopt;
  return it->second;
}

bool WaitRegistry::StartCheck(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = keys_.find(key);
  if (it == keys_.end() || it->second.waiters.empty()) return false;
  if (it->second.checking) {
    it->second.recheck = true;
    return false;
  }
  it->second.checking = true;
  it->second.recheck = false;
  return true;
}

bool WaitRegistry::FinishCheck(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = keys_.find(key);
  if (it == keys_.end()) return false;
  it->second.checking = false;
  const bool again = it->second.recheck && !it->second.waiters.empty();
  it->second.recheck = false;
  DropIfIdle(it);
  return again;
}

void WaitRegistry::DropIfIdle(std::map<std::string, KeyWaiters>::iterator it) {
  if (!it->second.waiters.empty() || it->second.checking) return;
  key_by_hash_.erase(it->second.hash);
  keys_.erase(it);
}

}  // namespace idem::pg
