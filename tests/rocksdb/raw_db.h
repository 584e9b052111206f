// Direct access to a closed store's directory, as RocksDB itself sees it:
// for planting corrupt bytes and for checking what is really on disk.
#pragma once

#include <map>
#include <string>

namespace idem::testing {

// Writes `value` under `key`, bypassing the store. False on any error.
bool PutRaw(const std::string& dir, const std::string& key, const std::string& value);

// Every key and value in the database (empty on any error).
std::map<std::string, std::string> ReadAllRaw(const std::string& dir);

}  // namespace idem::testing
