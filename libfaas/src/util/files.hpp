// Small file-system helpers with the durability the data dir needs.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace faas {

std::string read_file(const std::filesystem::path& path);

// Writes `data` to a temporary file beside `path`, then renames it over `path`: readers see the old or the new
// content, never a part. With `sync`, the file is fsync'ed before the rename.
void write_file_atomic(const std::filesystem::path& path, std::string_view data, bool sync = false);

// Exchanges two directory entries atomically (renameat2 RENAME_EXCHANGE); both must exist.
void exchange_paths(const std::filesystem::path& a, const std::filesystem::path& b);

// An exclusive advisory lock on a file (flock), held for the object's life. It serialises threads of this process
// and other processes alike, because each holder opens the file anew. Blocks until acquired. The lock file is
// never followed through a symbolic link, and it is removed when the lock is released, so no lock file outlives
// its use (a waiter that got the lock on a file removed meanwhile tries again on the new one).
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace faas
