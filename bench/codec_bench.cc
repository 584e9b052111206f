// Fingerprints and the record codec: the per-request CPU work around the
// store, with no store and no network. Request bodies of 100 B, 10 KiB and
// 512 KiB, the sizes the HTTP benchmark sends.
#include <benchmark/benchmark.h>

#include <string>

#include "idem/fingerprint.h"
#include "idem/record_codec.h"

namespace idem {
namespace {

// A JSON payment padded with a "note" field to exactly `size` bytes.
std::string Body(size_t size) {
  std::string body = R"({"amount":1000,"currency":"eur","note":")";
  const std::string tail = "\"}";
  if (body.size() + tail.size() < size) body.append(size - body.size() - tail.size(), 'x');
  return body + tail;
}

void Fingerprint(benchmark::State& state, FingerprintMode mode) {
  const std::string body = Body(static_cast<size_t>(state.range(0)));
  const FingerprintInput input{"POST", "/payments", "application/json", body};
  for (auto _ : state) {
    auto fp = ComputeFingerprint(mode, input);
    if (!fp.ok()) {
      state.SkipWithError("fingerprint failed");
      break;
    }
    benchmark::DoNotOptimize(fp->data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
void BM_FingerprintBody(benchmark::State& state) { Fingerprint(state, FingerprintMode::kBody); }
void BM_FingerprintJson(benchmark::State& state) { Fingerprint(state, FingerprintMode::kJson); }
BENCHMARK(BM_FingerprintBody)->Arg(100)->Arg(10 << 10)->Arg(512 << 10);
BENCHMARK(BM_FingerprintJson)->Arg(100)->Arg(10 << 10)->Arg(512 << 10);

// A completed record as the gateway stores it for POST /payments.
Record Completed(size_t body_size) {
  Record r;
  r.key = "anonymous POST /payments 0192f0c4-7d1e-7000-8000-000000000001";
  r.state = RecordState::kCompleted;
  r.fingerprint = std::string(32, 'f');
  r.owner = "gateway-1";
  r.fence = 1;
  r.response.status = 201;
  r.response.headers = {{"Content-Type", "application/json"}};
  r.response.body = Body(body_size);
  r.created_at_ms = 1'700'000'000'000;
  r.expires_at_ms = r.created_at_ms + 86'400'000;
  return r;
}

void BM_EncodeRecord(benchmark::State& state) {
  const Record record = Completed(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(EncodeRecord(record).data());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeRecord)->Arg(100)->Arg(10 << 10);

void BM_DecodeRecord(benchmark::State& state) {
  const std::string bytes = EncodeRecord(Completed(static_cast<size_t>(state.range(0))));
  for (auto _ : state) {
    auto record = DecodeRecord(bytes);
    if (!record.ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(record->response.body.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeRecord)->Arg(100)->Arg(10 << 10);

}  // namespace
}  // namespace idem

BENCHMARK_MAIN();
