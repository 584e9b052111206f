// Opening a directory that cannot be used gives a clear error, never a
// crash: missing (created), locked by this or another process, not a
// directory, absent with create_if_missing off, no path at all.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "idem/rocksdb_store.h"
#include "rocksdb/child_process.h"
#include "rocksdb/temp_dir.h"

namespace idem::testing {
namespace {

Result<std::shared_ptr<Store>> OpenAt(const std::string& path,
                                      bool create_if_missing = true) {
  RocksDbStoreOptions options;
  options.path = path;
  options.create_if_missing = create_if_missing;
  return NewRocksDbStore(options);
}

TEST(RocksDbOpenTest, CreatesAMissingDirectoryWithItsParents) {
  TempDir dir;
  const std::string path = dir.path() + "/a/b/idem-data";
  auto store = OpenAt(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(PingSync(**store).ok());
  EXPECT_TRUE(std::filesystem::exists(path + "/CURRENT"));
}

TEST(RocksDbOpenTest, SecondStoreInTheSameProcessIsRefused) {
  TempDir dir;
  auto first = OpenAt(dir.path());
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = OpenAt(dir.path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(), "rocksdb:" + dir.path() +
                                           " is in use by another store in this process "
                                           "(LOCK held)");
}

TEST(RocksDbOpenTest, DirectoryLockedByAnotherProcessIsUnavailable) {
  TempDir dir;
  ChildProcess holder({"--hold-lock", dir.path()});
  ASSERT_TRUE(holder.started());
  ASSERT_EQ(holder.ReadLine(), "ready");

  auto store = OpenAt(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.status().message(),
            "rocksdb:" + dir.path() + " is in use by another process (LOCK held)");

  holder.Kill();  // the lock dies with its process
  auto reopened = OpenAt(dir.path());
  EXPECT_TRUE(reopened.ok()) << reopened.status();
}

TEST(RocksDbOpenTest, PathThatIsAFileIsUnavailable) {
  TempDir dir;
  const std::string path = dir.path() + "/file";
  std::ofstream(path) << "not a database";
  auto store = OpenAt(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.status().message(), "rocksdb:" + path + " is not a directory");
}

TEST(RocksDbOpenTest, MissingDirectoryWithoutCreateIsNotFound) {
  TempDir dir;
  auto missing = OpenAt(dir.path() + "/missing", /*create_if_missing=*/false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  auto empty = OpenAt(dir.path(), /*create_if_missing=*/false);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound) << empty.status();
}

TEST(RocksDbOpenTest, EmptyPathIsInvalid) {
  EXPECT_EQ(OpenAt("").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace idem::testing
