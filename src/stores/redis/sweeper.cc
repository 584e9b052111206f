#include "stores/redis/sweeper.h"

#include <algorithm>
#include <utility>

namespace idem::redis_internal {
namespace {

constexpr const char* kScanBatch = "256";

// A glob pattern matching every key that starts with `prefix`.
std::string MatchPrefix(const std::string& prefix) {
  std::string pattern;
  for (const char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      pattern.push_back('\\');
    }
    pattern.push_back(c);
  }
  pattern.push_back('*');
  return pattern;
}

}  // namespace

// One Sweep call: SCAN a batch, sweep its keys at most `limit - removed` at a
// time (so the limit is never passed), then the next batch.
class Sweeper::Job : public std::enable_shared_from_this<Sweeper::Job> {
 public:
  Job(Sweeper& sweeper, size_t limit, Callback<Result<size_t>> done)
      : sweeper_(sweeper), limit_(limit), done_(std::move(done)) {}

  void Start() {
    auto self = shared_from_this();
    sweeper_.router_.WithMasters([self](Result<std::vector<Endpoint>> nodes) {
      if (!nodes.ok()) return self->Finish(nodes.status());
      self->Run(std::move(nodes).value());
    });
  }

 private:
  void Run(std::vector<Endpoint> nodes) {
    std::sort(nodes.begin(), nodes.end(), [](const Endpoint& a, const Endpoint& b) {
      return a.ToString() < b.ToString();
    });
    position_ = sweeper_.Load(nodes);
    wrap_allowed_ = !position_.at_start();
    Scan();
  }

  void Scan() {
    auto self = shared_from_this();
    sweeper_.router_.SendTo(position_.nodes[position_.node],
                            PlainCommand({"SCAN", position_.cursor, "MATCH",
                                          sweeper_.match_, "COUNT", kScanBatch},
                                         [self](const redisReply* reply, Status status) {
                                           self->OnScan(reply, std::move(status));
                                         }));
  }

  void OnScan(const redisReply* reply, Status status) {
    if (status.ok() && reply->type == REDIS_REPLY_ERROR) status = ErrorReplyStatus(reply);
    if (status.ok() && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                        reply->element[0]->type != REDIS_REPLY_STRING ||
                        reply->element[1]->type != REDIS_REPLY_ARRAY)) {
      status = Internal("SCAN: unexpected reply");
    }
    if (!status.ok()) {
      Finish(std::move(status));
      return;
    }
    next_cursor_.assign(reply->element[0]->str, reply->element[0]->len);
    keys_.clear();
    next_key_ = 0;
    const redisReply* keys = reply->element[1];
    for (size_t i = 0; i < keys->elements; ++i) {
      keys_.emplace_back(keys->element[i]->str, keys->element[i]->len);
    }
    SweepChunk();
  }

  void SweepChunk() {
    if (removed_ >= limit_) {
      // Stop inside this batch: the next call scans it again.
      sweeper_.Save(position_);
      Finish(Status::Ok());
      return;
    }
    if (next_key_ == keys_.size()) {
      Advance();
      return;
    }
    const size_t chunk = std::min(limit_ - removed_, keys_.size() - next_key_);
    pending_ = chunk;
    auto self = shared_from_this();
    for (size_t i = 0; i < chunk; ++i) {
      sweeper_.sweep_key_(keys_[next_key_++], [self](Result<bool> removed) {
        self->OnKeySwept(std::move(removed));
      });
    }
  }

  void OnKeySwept(Result<bool> removed) {
    bool last = false;
    {
      std::lock_guard lock(mutex_);
      if (!removed.ok()) {
        if (error_.ok()) error_ = removed.status();
      } else if (*removed) {
        ++removed_;
      }
      last = --pending_ == 0;
    }
    if (!last) return;
    if (!error_.ok()) {
      Finish(error_);
      return;
    }
    SweepChunk();
  }

  void Advance() {
    position_.cursor = next_cursor_;
    if (position_.cursor == "0") {
      ++position_.node;
      if (position_.node == position_.nodes.size()) {
        position_.node = 0;
        if (!wrap_allowed_) {
          sweeper_.Save(position_);
          Finish(Status::Ok());
          return;
        }
        wrap_allowed_ = false;  // started mid-way: one more pass from the start
      }
    }
    sweeper_.Save(position_);
    Scan();
  }

  void Finish(Status status) {
    if (!done_) return;
    auto done = std::exchange(done_, nullptr);
    if (status.ok()) {
      done(removed_);
    } else {
      done(std::move(status));
    }
  }

  Sweeper& sweeper_;
  const size_t limit_;
  Callback<Result<size_t>> done_;
  Position position_;
  bool wrap_allowed_ = false;
  std::string next_cursor_;
  std::vector<std::string> keys_;
  size_t next_key_ = 0;

  std::mutex mutex_;  // the per-key callbacks run on any io thread
  size_t pending_ = 0;
  size_t removed_ = 0;
  Status error_;
};

Sweeper::Sweeper(Router& router, std::string key_prefix, SweepKeyFunction sweep_key)
    : router_(router),
      match_(MatchPrefix(key_prefix)),
      sweep_key_(std::move(sweep_key)) {}

void Sweeper::Sweep(size_t limit, Callback<Result<size_t>> done) {
  if (limit == 0) {
    done(size_t{0});
    return;
  }
  std::make_shared<Job>(*this, limit, std::move(done))->Start();
}

Sweeper::Position Sweeper::Load(const std::vector<Endpoint>& nodes) {
  std::lock_guard lock(mutex_);
  if (saved_.nodes != nodes) {
    saved_ = Position();
    saved_.nodes = nodes;
  }
  return saved_;
}

void Sweeper::Save(Position position) {
  std::lock_guard lock(mutex_);
  if (saved_.nodes == position.nodes) saved_ = std::move(position);
}

}  // namespace idem::redis_internal
