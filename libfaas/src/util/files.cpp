#include "util/files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "faas/error.hpp"
#include "util/ids.hpp"

namespace faas {

namespace {
[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path) {
  int error = errno;
  // The disk, not the request: the caller may retry once space returns.
  bool store = error == ENOSPC || error == EDQUOT || error == EROFS || error == EIO;
  throw Error(store ? ErrorCode::store_unavailable : ErrorCode::internal,
              what + " " + path.string() + ": " + std::strerror(error));
}
}  // namespace

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read", path);
  std::ostringstream content;
  content << in.rdbuf();
  return std::move(content).str();
}

void write_file_atomic(const std::filesystem::path& path, std::string_view data, bool sync) {
  auto temp = path;
  temp += ".tmp-" + make_uuid4();
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create", temp);
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      errno = saved;
      fail("cannot write", temp);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (sync && ::fsync(fd) != 0) {
    ::close(fd);
    ::unlink(temp.c_str());
    fail("cannot sync", temp);
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    fail("cannot rename onto", path);
  }
}

void exchange_paths(const std::filesystem::path& a, const std::filesystem::path& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) fail("cannot exchange", a);
}

FileLock::FileLock(const std::filesystem::path& path) : path_(path) {
  for (;;) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) fail("cannot open lock", path);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        fail("cannot lock", path);
      }
    }
    // The holder before us removes the file as it lets go: our lock is good only on the file still at `path`.
    struct stat held {}, named {};
    if (::fstat(fd_, &held) == 0 && ::lstat(path.c_str(), &named) == 0 && held.st_dev == named.st_dev &&
        held.st_ino == named.st_ino) {
      return;
    }
    ::close(fd_);
  }
}

FileLock::~FileLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // still holding the lock, so nobody is between their check and their work
  ::close(fd_);             // closing the last descriptor releases the lock
}

}  // namespace faas
