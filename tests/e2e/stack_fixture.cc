#include "stack_fixture.h"

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cstdlib>
#include <iostream>
#include <latch>
#include <sstream>
#include <thread>

namespace idem::e2e {
namespace {

bool IsConnectionManagement(std::string_view name) {
  for (std::string_view skip : {"Date", "Connection", "Keep-Alive"}) {
    if (EqualsIgnoreCase(name, skip)) return true;
  }
  return false;
}

std::string Lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

// Header lines with lowercase names, connection management and
// Idempotent-Replayed left out, sorted so order differences show as one.
std::vector<std::string> ComparableHeaders(const HttpResponse& response) {
  std::vector<std::string> lines;
  for (const auto& [name, value] : response.headers) {
    if (IsConnectionManagement(name) || EqualsIgnoreCase(name, "Idempotent-Replayed")) {
      continue;
    }
    lines.push_back(Lowercase(name) + ": " + value);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += "  " + line + "\n";
  return out;
}

}  // namespace

std::unique_ptr<Stack> StartStack(const std::string& config,
                                  const std::string& store_uri) {
  auto stack = std::make_unique<Stack>();
  stack->upstream = Upstream::Start(stack->error);
  if (!stack->upstream) {
    stack->error = "upstream: " + stack->error;
    return stack;
  }
  GatewayOptions options;
  options.config = config;
  options.store_uri = store_uri;
  options.upstream_url = stack->upstream->url();
  stack->gateway = Gateway::Start(options, stack->error);
  return stack;
}

std::string DefaultConfig() {
  return R"toml(
[server]
threads = 2
max_request_body = "64KiB"
max_header_size = "8KiB"
header_timeout = "1s"
body_timeout = "1s"

[upstream]
timeout = "2s"

[idempotency]
max_stored_body = "32KiB"

[[route]]
path = "/payments*"
require_key = true

[[route]]
path = "/json/*"
fingerprint = "json"

[[route]]
path = "/stored5xx/*"
on_server_error = "store"

[[route]]
path = "/wait/*"
in_flight = "wait"
wait_timeout = "10s"

[[route]]
path = "/lease/*"
lease_ttl = "300ms"
)toml";
}

std::string UniqueKey(std::string_view hint) {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string raw = info ? std::string(info->test_suite_name()) + "-" + info->name() : "";
  std::string key = "k-";
  for (char c : raw) {
    bool alnum =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    key.push_back(alnum ? c : '-');
  }
  if (!hint.empty()) key += "-" + std::string(hint);
  key += "-" + std::to_string(++counter);
  return key;
}

HttpRequest KeyedPost(std::string target, std::string_view key, std::string body,
                      std::string content_type) {
  HttpRequest request = Post(std::move(target), std::move(body), std::move(content_type));
  request.Header("Idempotency-Key", "\"" + std::string(key) + "\"");
  return request;
}

std::string PaymentBody(int amount, std::string_view currency) {
  return "{\"amount\":" + std::to_string(amount) + ",\"currency\":\"" +
         std::string(currency) + "\"}";
}

::testing::AssertionResult IsProblem(const HttpResponse& response, int status,
                                     std::string_view slug) {
  if (!response.ok()) {
    return ::testing::AssertionFailure() << "no response: " << response.error;
  }
  if (response.status != status) {
    return ::testing::AssertionFailure()
           << "status " << response.status << ", want " << status << "\n"
           << response.Describe();
  }
  auto type = response.Header("Content-Type");
  if (!type || type->rfind("application/problem+json", 0) != 0) {
    return ::testing::AssertionFailure() << "Content-Type is " << type.value_or("(none)")
                                         << ", want application/problem+json\n"
                                         << response.Describe();
  }
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(response.body, ec);
  if (ec || !body.is_object()) {
    return ::testing::AssertionFailure() << "body is not a JSON object\n"
                                         << response.Describe();
  }
  const auto& object = body.as_object();
  const auto* type_uri = object.if_contains("type");
  std::string want_prefix = "urn:idem:problem:";
  if (type_uri == nullptr || !type_uri->is_string() ||
      std::string_view(type_uri->as_string()).substr(0, want_prefix.size()) !=
          want_prefix) {
    return ::testing::AssertionFailure() << "\"type\" is not urn:idem:problem:...\n"
                                         << response.Describe();
  }
  if (!slug.empty() &&
      std::string_view(type_uri->as_string()) != want_prefix + std::string(slug)) {
    return ::testing::AssertionFailure()
           << "type " << type_uri->as_string() << ", want " << want_prefix << slug << "\n"
           << response.Describe();
  }
  const auto* title = object.if_contains("title");
  if (title == nullptr || !title->is_string()) {
    return ::testing::AssertionFailure() << "no \"title\"\n" << response.Describe();
  }
  const auto* status_member = object.if_contains("status");
  if (status_member == nullptr || !status_member->is_int64() ||
      status_member->as_int64() != status) {
    return ::testing::AssertionFailure() << "\"status\" member does not match\n"
                                         << response.Describe();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsReplayOf(const HttpResponse& replay,
                                      const HttpResponse& first) {
  if (!replay.ok() || !first.ok()) {
    return ::testing::AssertionFailure()
           << "missing response: " << first.error << " / " << replay.error;
  }
  auto marks = replay.HeaderValues("Idempotent-Replayed");
  if (marks.size() != 1 || marks[0] != "true") {
    return ::testing::AssertionFailure()
           << "want exactly one 'Idempotent-Replayed: true'\n"
           << replay.Describe();
  }
  if (replay.status != first.status) {
    return ::testing::AssertionFailure()
           << "status " << replay.status << ", first was " << first.status;
  }
  if (replay.body != first.body) {
    return ::testing::AssertionFailure()
           << "body differs:\nfirst:  " << first.body << "\nreplay: " << replay.body;
  }
  auto want = ComparableHeaders(first);
  auto got = ComparableHeaders(replay);
  if (want != got) {
    return ::testing::AssertionFailure() << "headers differ:\nfirst:\n"
                                         << Join(want) << "replay:\n"
                                         << Join(got);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsFresh(const HttpResponse& response) {
  if (!response.ok()) {
    return ::testing::AssertionFailure() << "no response: " << response.error;
  }
  if (response.HasHeader("Idempotent-Replayed")) {
    return ::testing::AssertionFailure() << "unexpected replay\n" << response.Describe();
  }
  return ::testing::AssertionSuccess();
}

std::map<std::string, double> OutcomeCounts(uint16_t admin_port) {
  std::map<std::string, double> counts;
  HttpResponse response = Fetch(admin_port, Get("/metrics"), std::chrono::seconds(5));
  if (!response.ok() || response.status != 200) return counts;
  std::istringstream in(response.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("idem_", 0) != 0) continue;
    size_t brace = line.find('{');
    if (brace == std::string::npos) continue;
    std::string_view name(line.data(), brace);
    if (name.size() < 6 || name.substr(name.size() - 6) != "_total") continue;
    size_t label = line.find("outcome=\"", brace);
    size_t close = line.find('}', brace);
    if (label == std::string::npos || close == std::string::npos || label > close) {
      continue;
    }
    size_t start = label + 9;
    size_t end = line.find('"', start);
    std::string outcome = line.substr(start, end - start);
    counts[outcome] += std::strtod(line.c_str() + close + 1, nullptr);
  }
  return counts;
}

bool Replayed(const HttpResponse& response) {
  auto marks = response.HeaderValues("Idempotent-Replayed");
  return marks.size() == 1 && marks[0] == "true";
}

std::unique_ptr<GatewayGroup> GatewayGroup::Start(const std::string& store_uri, int count,
                                                  const std::string& config) {
  auto group = std::make_unique<GatewayGroup>();
  group->upstream = Upstream::Start(group->error);
  if (!group->upstream) {
    group->error = "upstream: " + group->error;
    return group;
  }
  for (int i = 0; i < count; ++i) {
    GatewayOptions options;
    options.config = config;
    options.store_uri = store_uri;
    options.upstream_url = group->upstream->url();
    auto gateway = Gateway::Start(options, group->error);
    if (!gateway) {
      group->gateways.clear();
      return group;
    }
    group->gateways.push_back(std::move(gateway));
  }
  return group;
}

std::vector<HttpResponse> GatewayGroup::SendToAll(const HttpRequest& request, int n) {
  std::vector<HttpResponse> responses(n);
  std::latch ready(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    const uint16_t port = gateways[i % gateways.size()]->port();
    threads.emplace_back([&, i, port] {
      HttpConnection connection;
      const bool connected = connection.Connect(port);
      ready.arrive_and_wait();
      if (!connected) {
        responses[i].error = connection.error();
        return;
      }
      responses[i] = connection.RoundTrip(request, std::chrono::seconds(30));
    });
  }
  for (auto& thread : threads) thread.join();
  return responses;
}

std::string GatewayGroup::Logs(size_t max_bytes) const {
  std::string out;
  for (size_t i = 0; i < gateways.size(); ++i) {
    out += "--- gateway " + std::to_string(i) + " log ---\n" +
           gateways[i]->Log().substr(0, max_bytes) + "\n";
  }
  return out;
}

Stack* StackTestBase::SharedStack(const std::string& config,
                                  const std::string& store_uri) {
  static std::map<std::pair<std::string, std::string>, std::unique_ptr<Stack>> stacks;
  std::unique_ptr<Stack>& stack = stacks[{config, store_uri}];
  if (stack && !stack->ok()) return stack.get();  // failed to start: do not retry
  if (stack && stack->gateway->process().Running() &&
      stack->upstream->process().Running()) {
    return stack.get();
  }
  if (stack) {
    std::cerr << "[ stack    ] a process of this stack died; starting a new one\n";
  }
  stack = StartStack(config, store_uri);
  return stack.get();
}

void StackTestBase::MarkLogs(Stack& stack) {
  upstream_log_mark_ = stack.upstream->process().LogSize();
  gateway_log_mark_ = stack.gateway->process().LogSize();
}

void StackTestBase::DumpLogsOnFailure(Stack& stack) {
  if (!HasFailure() || !stack.ok()) return;
  for (auto [name, process] : {std::pair{"gateway", &stack.gateway->process()},
                               std::pair{"upstream", &stack.upstream->process()}}) {
    if (!process->Running() && process->exit_status()) {
      std::cerr << "[ stack    ] the " << name << " "
                << process->exit_status()->ToString() << "\n";
    }
  }
  std::cerr << "----- gateway log during this test ("
            << stack.gateway->process().log_path() << ") -----\n"
            << stack.gateway->process().LogSince(gateway_log_mark_)
            << "----- upstream log during this test -----\n"
            << stack.upstream->process().LogSince(upstream_log_mark_)
            << "----- end of logs -----\n";
}

}  // namespace idem::e2e
