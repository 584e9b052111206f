// `idem keys get|delete` and `idem gc`: admin commands that open a store
// directly (for RocksDB, a stopped gateway's directory; for Redis and
// PostgreSQL, the shared store while gateways run), named by --store or
// by a gateway's --config (whose encryption keys then decrypt records).
#pragma once

namespace CLI {
class App;
}

namespace idem::cli {

void AddKeysCommand(CLI::App& app);
void AddGcCommand(CLI::App& app);

}  // namespace idem::cli
