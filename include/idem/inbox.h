// Inbox: at-most-once processing of messages from an at-least-once queue.
//
// Queues (Kafka, SQS, RabbitMQ, Redis Streams) redeliver a message when
// its consumer crashes before acknowledging it, so the same message id
// comes back. Inbox::Process runs the handler for a message id only if no
// earlier delivery processed it within the retention window, on any store
// (the key is "<scope> <consumer> <message id>"):
//
//   InboxOptions options;
//   options.consumer = "billing";
//   Inbox inbox(engine, options);
//   auto outcome = inbox.Process(msg.id, [&] { return ApplyPayment(msg); });
//   if (outcome.ok()) queue.Ack(msg);   // kProcessed or kDuplicate
//
// A handler error (or exception) releases the id, so the next delivery
// runs the handler again; only success marks the id processed. Two
// deliveries at the same time: one runs, the other waits for it or gets
// kConflict, by InboxOptions::wait_timeout_ms (do not acknowledge on
// kConflict; the queue delivers again).
//
// The handler's effect and the "processed" mark are written separately:
// a crash after the effect but before the mark runs the handler again once
// the lease lapses. For effects in PostgreSQL use PostgresInbox
// (postgres_inbox.h), which commits both in one transaction; otherwise make
// the effect idempotent or atomic with its own dedupe (see
// examples/redis_stream_consumer.cc).
//
// Thread-safety: an Inbox is thread-safe; the handler runs on the calling
// thread, and a helper thread extends its lease while it runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "idem/engine.h"
#include "idem/status.h"

namespace idem {

struct InboxOptions {
  // Which consumer processes the messages: each consumer (group) has its
  // own set of processed ids. Default: "default".
  std::string consumer = "default";
  // How long a processed id is remembered, in milliseconds; choose more
  // than the queue's longest redelivery delay. Default: 7 days.
  int64_t retention_ms = int64_t{7} * 86'400'000;
  // How long a handler may run before a redelivery may take the message
  // over; extended while the handler runs. Default: 30 s.
  int64_t lease_ttl_ms = 30'000;
  // A delivery of a message another delivery is processing waits this long
  // for it to finish; 0 answers kConflict at once. Default: 0.
  int64_t wait_timeout_ms = 0;
  // Names the family of keys in the store. Default: "inbox".
  std::string scope = "inbox";
};

enum class InboxOutcome {
  kProcessed,  // the handler ran and succeeded now
  kDuplicate,  // an earlier delivery processed this id
};

class Inbox {
 public:
  Inbox(std::shared_ptr<Engine> engine, InboxOptions options = {});
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Errors: the handler's (the id stays unprocessed); kConflict;
  // kInvalidArgument for an empty id; the store's errors.
  Result<InboxOutcome> Process(std::string_view message_id,
                               const std::function<Status()>& handler);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace idem
