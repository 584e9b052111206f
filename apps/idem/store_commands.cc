#include "store_commands.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "gateway/config.h"
#include "idem/encrypting_store.h"
#include "idem/key.h"
#include "idem/open_store.h"
#include "idem/record_json.h"
#include "idem/store.h"

namespace idem::cli {
namespace {

// Which store a command opens: --store, or the [store] of a gateway's
// --config (whose [store.encryption] keys then decrypt what is read and
// encrypt what is written, as the gateway does).
struct StoreArgs {
  std::string store_uri;
  std::string config_file;
};

struct KeyArgs : StoreArgs {
  std::string scope_key;  // whole scope key, or built from the parts below
  std::string tenant = "anonymous";
  std::string method = "POST";
  std::string path;
  std::string key;
};

// Exit codes: 1 when the record is not found, 2 for every other failure.
[[noreturn]] void Fail(const Status& status, const std::string& context = "") {
  std::cerr << "idem: " << context << status << "\n";
  // CLI11 turns this into the exit code after the stack (and the store)
  // has been unwound and closed.
  throw CLI::RuntimeError(status.code() == StatusCode::kNotFound ? 1 : 2);
}

std::shared_ptr<Store> OpenOrFail(const StoreArgs& args) {
  std::string uri = args.store_uri;
  std::optional<EncryptionKeys> keys;
  if (!args.config_file.empty()) {
    auto config = gateway::LoadConfigFile(args.config_file);
    if (!config.ok()) Fail(config.status());
    if (uri.empty()) uri = config->store.uri;
    auto loaded = gateway::LoadEncryptionKeys(config->store.encryption);
    if (!loaded.ok()) Fail(loaded.status());
    keys = std::move(loaded).value();
  }
  if (uri.empty()) Fail(InvalidArgument("give --store URI, or --config FILE"));
  auto store = OpenStore(uri);
  if (!store.ok()) Fail(store.status(), "cannot open store " + uri + ": ");
  if (keys) return NewEncryptingStore(std::move(store).value(), *keys);
  return *store;
}

void AddStoreOptions(CLI::App& command, StoreArgs& args) {
  command.add_option("--store", args.store_uri,
                     "store URI (e.g. rocksdb:./idem-data); default: the --config's");
  command.add_option("--config", args.config_file,
                     "the gateway's TOML configuration: its [store] uri, and its "
                     "[store.encryption] keys to read encrypted records")
      ->check(CLI::ExistingFile);
}

std::string ScopeKeyOf(const KeyArgs& args) {
  if (!args.scope_key.empty()) return args.scope_key;
  return BuildScopeKey(args.tenant, args.method, args.path, args.key);
}

void AddKeyOptions(CLI::App& command, KeyArgs& args) {
  AddStoreOptions(command, args);
  auto* whole = command.add_option(
      "scope_key", args.scope_key,
      "whole scope key: \"<tenant> <METHOD> <path> <key>\" (see docs/http.md)");
  auto* key = command.add_option("--key", args.key, "the client's Idempotency-Key");
  command.add_option("--path", args.path, "request path, with --key");
  command.add_option("--method", args.method, "request method, with --key")
      ->capture_default_str();
  command.add_option("--tenant", args.tenant, "tenant id, with --key")
      ->capture_default_str();
  whole->excludes(key);
  command.callback([&command, whole, key] {
    if (whole->count() == 0 && key->count() == 0) {
      throw CLI::ValidationError(command.get_name(),
                                 "give a scope key, or --key with --path");
    }
  });
}

}  // namespace

void AddKeysCommand(CLI::App& app) {
  auto* keys = app.add_subcommand("keys", "inspect or purge stored records");
  keys->require_subcommand(1);

  auto get_args = std::make_shared<KeyArgs>();
  auto* get = keys->add_subcommand("get", "print one record as JSON");
  AddKeyOptions(*get, *get_args);
  get->final_callback([get_args] {
    auto store = OpenOrFail(*get_args);
    auto record = GetSync(*store, ScopeKeyOf(*get_args));
    if (!record.ok()) Fail(record.status());
    std::cout << RecordToJson(**record) << "\n";
  });

  auto delete_args = std::make_shared<KeyArgs>();
  auto* remove = keys->add_subcommand("delete", "purge one record");
  AddKeyOptions(*remove, *delete_args);
  remove->final_callback([delete_args] {
    auto store = OpenOrFail(*delete_args);
    Status status = DeleteSync(*store, ScopeKeyOf(*delete_args));
    if (!status.ok()) Fail(status);
    std::cout << "deleted\n";
  });
}

void AddGcCommand(CLI::App& app) {
  struct GcArgs : StoreArgs {
    size_t batch = 1000;
  };
  auto args = std::make_shared<GcArgs>();
  auto* gc = app.add_subcommand("gc", "remove expired records now");
  AddStoreOptions(*gc, *args);
  gc->add_option("--batch", args->batch, "records removed per sweep call")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}));
  gc->final_callback([args] {
    auto store = OpenOrFail(*args);
    size_t total = 0;
    while (true) {
      auto removed = SweepSync(*store, args->batch);
      if (!removed.ok()) {
        Fail(removed.status(), "gc stopped after " + std::to_string(total) +
                                   " records: ");
      }
      total += *removed;
      if (*removed < args->batch) break;
    }
    std::cout << "removed " << total << " expired records\n";
  });
}

}  // namespace idem::cli
