// idem migrate --store postgresql://... [--status]
#include "migrate_command.h"

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "idem/postgres_store.h"

namespace idem::cli {
namespace {

bool IsPostgresUri(std::string_view uri) {
  return uri.substr(0, 13) == "postgresql://" || uri.substr(0, 11) == "postgres://";
}

[[noreturn]] void Fail(const Status& status) {
  std::cerr << "idem: migrate: " << status << "\n";
  throw CLI::RuntimeError(2);
}

}  // namespace

void AddMigrateCommand(CLI::App& app) {
  struct MigrateArgs {
    std::string store_uri;
    bool status_only = false;
  };
  auto args = std::make_shared<MigrateArgs>();
  auto* migrate = app.add_subcommand(
      "migrate", "create or upgrade the store's SQL schema (PostgreSQL)");
  migrate->add_option("--store", args->store_uri, "store URI (postgresql://...)")
      ->required();
  migrate->add_flag("--status", args->status_only,
                    "print the schema version and exit 1 if it is behind");
  migrate->final_callback([args] {
    if (!IsPostgresUri(args->store_uri)) {
      std::cout << "nothing to migrate: only postgresql:// stores have a schema\n";
      return;
    }
    // The same URI `idem serve --store` takes, idem's own options included.
    auto parsed = ParsePostgresUri(args->store_uri);
    if (!parsed.ok()) Fail(parsed.status());
    const PostgresStoreOptions& options = *parsed;
    auto before = PostgresSchemaVersion(options);
    if (!before.ok()) Fail(before.status());
    if (args->status_only) {
      std::cout << "schema version " << *before
                << " (this idem: " << kPostgresSchemaVersion << ")\n";
      if (*before < kPostgresSchemaVersion) throw CLI::RuntimeError(1);
      return;
    }
    if (Status status = MigratePostgres(options); !status.ok()) Fail(status);
    if (*before == kPostgresSchemaVersion) {
      std::cout << "schema already at version " << kPostgresSchemaVersion << "\n";
    } else {
      std::cout << "schema migrated from version " << *before << " to "
                << kPostgresSchemaVersion << "\n";
    }
  });
}

}  // namespace idem::cli
