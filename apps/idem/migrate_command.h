// `idem migrate --store URI`: creates or upgrades the SQL schema of a store
// that has one (PostgreSQL); other stores have nothing to migrate.
#pragma once

namespace CLI {
class App;
}

namespace idem::cli {

void AddMigrateCommand(CLI::App& app);

}  // namespace idem::cli
