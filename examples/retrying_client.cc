// retrying_client: call an idempotent HTTP API safely.
//
//   retrying_client URL [PATH] [JSON_BODY]
//   e.g. retrying_client http://127.0.0.1:8080 /payments '{"amount":1200}'
//
// Sends one logical POST with a fresh UUIDv7 Idempotency-Key; connection
// failures, 409, 429 and 5xx are retried with the same key (exponential
// back-off with full jitter, Retry-After honoured), 400 and 422 are not.
// Then it sends the same operation again with the same key, as a client
// that never saw the first answer would: behind `idem serve` that second
// answer is a replay. Exits 0 when the first answer is a 2xx.
#include <chrono>
#include <iostream>
#include <string>

#include "idem/client.h"

namespace {

void Print(const char* label, const idem::Result<idem::ClientResponse>& r) {
  if (!r.ok()) {
    std::cout << label << ": error: " << r.status() << '\n';
    return;
  }
  std::cout << label << ": status " << r->status << ", attempts " << r->attempts
            << ", replayed " << (r->replayed ? "yes" : "no") << ", key "
            << r->idempotency_key << "\n  body: " << r->body << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: retrying_client URL [PATH] [JSON_BODY]\n";
    return 2;
  }
  idem::ClientOptions options;
  options.base_delay = std::chrono::milliseconds(200);
  options.max_attempts = 5;
  options.deadline = std::chrono::seconds(20);
  auto client = idem::Client::Create(argv[1], options);
  if (!client.ok()) {
    std::cerr << client.status() << '\n';
    return 2;
  }
  idem::ClientRequest request;
  request.method = "POST";
  request.target = argc > 2 ? argv[2] : "/payments";
  request.body = argc > 3 ? argv[3] : R"({"amount":1200,"currency":"EUR"})";

  auto first = client->Send(request);
  Print("first", first);
  if (!first.ok()) return 1;

  request.idempotency_key = first->idempotency_key;  // the same operation again
  Print("again", client->Send(request));
  return first->status >= 200 && first->status < 300 ? 0 : 1;
}
