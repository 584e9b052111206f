#include "rocksdb/raw_db.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>

#include <memory>

namespace idem::testing {
namespace {

std::unique_ptr<rocksdb::DB> OpenRaw(const std::string& dir) {
  rocksdb::Options options;
  rocksdb::DB* db = nullptr;
  if (!rocksdb::DB::Open(options, dir, &db).ok()) return nullptr;
  return std::unique_ptr<rocksdb::DB>(db);
}

}  // namespace

bool PutRaw(const std::string& dir, const std::string& key, const std::string& value) {
  auto db = OpenRaw(dir);
  if (db == nullptr) return false;
  rocksdb::WriteOptions write;
  write.sync = true;
  return db->Put(write, key, value).ok() && db->Close().ok();
}

std::map<std::string, std::string> ReadAllRaw(const std::string& dir) {
  std::map<std::string, std::string> all;
  auto db = OpenRaw(dir);
  if (db == nullptr) return all;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      all.emplace(it->key().ToString(), it->value().ToString());
    }
  }
  (void)db->Close();
  return all;
}

}  // namespace idem::testing
