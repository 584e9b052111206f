// order_phases: a multi-phase operation that survives crashes and retries.
//
//   order_phases [--store URI] [--key KEY] [--effects FILE]
//                [--crash-after PHASE] [--lease-ms N]
//
// "Place an order" runs as three phases under one idempotency key:
//   create_order  writes the order (its id derived from the key, so a
//                 re-run writes the same order)
//   charge_card   calls the payment provider with a key derived for that
//                 call by DeriveKey, so a retried charge is one charge
//   send_receipt  mails the receipt and answers 201
// After each phase its name and state are saved on the key; a retry after
// a crash resumes after the last saved phase; once finished, every retry
// gets the stored response.
//
// With --store (e.g. rocksdb:/tmp/orders) it runs the operation once, as a
// request handler would, printing the response. --crash-after PHASE kills
// the process (SIGKILL) right after that phase is saved (after the stored
// response for the last phase): run it again with the same --store and
// --key to see it resume. Side effects are appended to --effects.
//
// Without --store it demonstrates the whole story in a fresh temporary
// RocksDB directory: the mailer fails once, the retry resumes after
// charge_card, the next retry is a replay.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "idem/keys.h"
#include "idem/open_store.h"
#include "idem/phases.h"

namespace {

namespace json = boost::json;

struct Args {
  std::string store;
  std::string key = "order-request-7f3a";
  std::string effects;
  std::string crash_after;
  int64_t lease_ms = 5'000;
};

bool ParseArgs(int argc, char** argv, Args& args) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--store") {
      args.store = value;
    } else if (flag == "--key") {
      args.key = value;
    } else if (flag == "--effects") {
      args.effects = value;
    } else if (flag == "--crash-after") {
      args.crash_after = value;
    } else if (flag == "--lease-ms") {
      args.lease_ms = std::atoll(value.c_str());
    } else {
      return false;
    }
  }
  return argc % 2 == 1;
}

// The outside world: an orders table, a payment provider and a mailer,
// which here append one line per effect to a file (or count in memory).
class World {
 public:
  explicit World(std::string path) : path_(std::move(path)) {}

  void Record(const std::string& what, const std::string& detail) {
    ++counts_[what];
    if (path_.empty()) return;
    std::ofstream(path_, std::ios::app) << what << ' ' << detail << '\n';
  }
  int Count(const std::string& what) { return counts_[what]; }

  bool mailer_down = false;

 private:
  std::string path_;
  std::map<std::string, int> counts_;
};

std::string Field(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return "";
  return v->is_string() ? std::string(v->as_string()) : json::serialize(*v);
}

void DefinePhases(idem::PhasedOperation& order, World& world) {
  order
      .AddPhase(
          "create_order",
          [&world](const idem::PhaseInput& in) -> idem::PhaseResult {
            boost::system::error_code ec;
            json::value request = json::parse(in.state, ec);
            if (ec || !request.is_object()) {
              return idem::InvalidArgument("the order request is not a JSON object");
            }
            auto id = idem::DeriveKey("order-request", in.key, in.state);
            if (!id.ok()) return id.status();
            json::object state = request.as_object();
            state["order_id"] = "ord_" + id->substr(0, 12);
            world.Record("create_order", Field(state, "order_id"));
            return json::serialize(state);
          })
      .AddPhase("charge_card",
                [&world](const idem::PhaseInput& in) -> idem::PhaseResult {
                  json::object state = json::parse(in.state).as_object();
                  // The provider sees the same key however often this phase
                  // runs, so it charges once.
                  json::object params{{"amount", state["amount"]},
                                      {"currency", state["currency"]}};
                  auto charge_key = idem::DeriveKey("order/" + Field(state, "order_id"),
                                                    "charge", json::serialize(params));
                  if (!charge_key.ok()) return charge_key.status();
                  world.Record("charge_card", *charge_key + " " + Field(state, "amount") +
                                                  " " + Field(state, "currency"));
                  state["charge_id"] = "ch_" + charge_key->substr(0, 12);
                  return json::serialize(state);
                })
      .AddPhase("send_receipt",
                [&world](const idem::PhaseInput& in) -> idem::PhaseResult {
                  if (world.mailer_down) return idem::Unavailable("mailer unavailable");
                  json::object state = json::parse(in.state).as_object();
                  world.Record("send_receipt", Field(state, "order_id"));
                  json::object body{{"order_id", state["order_id"]},
                                    {"charge_id", state["charge_id"]},
                                    {"receipt", "sent"}};
                  return idem::StoredResponse{
                      201, {{"content-type", "application/json"}}, json::serialize(body)};
                });
}

constexpr char kRequest[] =
    R"({"sku":"book-42","amount":1200,"currency":"EUR","email":"ada@example.com"})";

void Print(const idem::Result<idem::PhasedResult>& r) {
  if (!r.ok()) {
    std::cout << "error: " << r.status() << '\n';
    return;
  }
  std::cout << "response: " << r->response.status << ' ' << r->response.body << '\n'
            << "replayed: " << (r->replayed ? "yes" : "no") << '\n';
  if (!r->replayed) {
    std::cout << "resumed after: "
              << (r->resumed_after.empty() ? "(nothing: ran from the start)"
                                           : r->resumed_after)
              << '\n';
  }
}

// One request, as a handler would serve it: a duplicate still running
// elsewhere (or a crashed owner whose lease has not lapsed) is retried.
idem::Result<idem::PhasedResult> RunWithRetries(idem::PhasedOperation& order,
                                                const std::string& key) {
  for (int attempt = 0;; ++attempt) {
    auto result = order.Run(key, kRequest);
    if (result.ok() || result.status().code() != idem::StatusCode::kConflict ||
        attempt == 600) {
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

int RunRequest(const Args& args) {
  auto store = idem::OpenStore(args.store);
  if (!store.ok()) {
    std::cerr << "cannot open " << args.store << ": " << store.status() << '\n';
    return 2;
  }
  World world(args.effects);
  idem::EnginePolicy policy;
  policy.lease_ttl_ms = args.lease_ms;
  idem::PhasedOptions options;
  options.after_checkpoint = [&args](std::string_view phase) {
    if (phase == args.crash_after) raise(SIGKILL);
  };
  idem::PhasedOperation order(std::make_shared<idem::Engine>(*store), policy, options);
  DefinePhases(order, world);
  auto result = RunWithRetries(order, args.key);
  if (args.crash_after == "send_receipt") raise(SIGKILL);  // stored, not yet answered
  Print(result);
  return result.ok() ? 0 : 1;
}

int Demo() {
  char pattern[] = "/tmp/idem-order-phases-XXXXXX";
  if (mkdtemp(pattern) == nullptr) return 2;
  const std::string dir = pattern;
  const std::string uri = "rocksdb:" + dir + "/store";
  int failures = 0;
  {
    auto store = idem::OpenStore(uri);
    if (!store.ok()) {
      std::cerr << "cannot open " << uri << ": " << store.status() << '\n';
      return 2;
    }
    World world("");
    idem::EnginePolicy policy;
    idem::PhasedOperation order(std::make_shared<idem::Engine>(*store), policy);
    DefinePhases(order, world);

    std::cout << "-- attempt 1: the mailer is down\n";
    world.mailer_down = true;
    auto first = order.Run("order-request-7f3a", kRequest);
    Print(first);
    failures += first.ok();

    std::cout << "-- attempt 2: resumes after the last saved phase\n";
    world.mailer_down = false;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(5));  // the handed-back lease ends
    auto second = order.Run("order-request-7f3a", kRequest);
    Print(second);
    failures += !second.ok() || second->resumed_after != "charge_card";

    std::cout << "-- attempt 3: a replay\n";
    auto third = order.Run("order-request-7f3a", kRequest);
    Print(third);
    failures += !third.ok() || !third->replayed;

    std::cout << "effects: create_order=" << world.Count("create_order")
              << " charge_card=" << world.Count("charge_card")
              << " send_receipt=" << world.Count("send_receipt") << '\n';
    failures += world.Count("create_order") != 1 || world.Count("charge_card") != 1 ||
                world.Count("send_receipt") != 1;
  }
  std::filesystem::remove_all(dir);
  std::cout << (failures == 0 ? "order_phases: ok\n" : "order_phases: FAILED\n");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, args)) {
    std::cerr << "usage: order_phases [--store URI] [--key KEY] [--effects FILE]"
                 " [--crash-after PHASE] [--lease-ms N]\n";
    return 2;
  }
  return args.store.empty() ? Demo() : RunRequest(args);
}
