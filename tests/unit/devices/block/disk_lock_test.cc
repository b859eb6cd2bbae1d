// One writer per disk: the OFD locks of two open file descriptions on one image (as two VMs
// would have), and the holder's pid from /proc/locks.
#include "src/devices/block/disk_lock.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "src/base/fd.h"

namespace edgevisor::block {
namespace {

using ::testing::HasSubstr;

class DiskLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/disk_lock_" + std::to_string(getpid()) + ".img";
    UniqueFd f(open(path_.c_str(), O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(f.valid());
  }
  void TearDown() override { unlink(path_.c_str()); }
  UniqueFd Open(bool rw) { return UniqueFd(open(path_.c_str(), rw ? O_RDWR : O_RDONLY)); }
  std::string path_;
};

TEST_F(DiskLockTest, OneWriterExcludesEveryoneElse) {
  UniqueFd a = Open(true), b = Open(true), c = Open(false);
  ASSERT_TRUE(LockDisk(a.get(), path_, false).ok());
  absl::Status s = LockDisk(b.get(), path_, false);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("path=" + path_ + ": the image is in use: process " +
                                     std::to_string(getpid())));
  EXPECT_FALSE(LockDisk(c.get(), path_, true).ok()) << "no reader beside a writer";
  a.Reset(-1);  // the writer goes: its lock with it
  EXPECT_TRUE(LockDisk(b.get(), path_, false).ok());
}

TEST_F(DiskLockTest, ReadersShare) {
  UniqueFd a = Open(false), b = Open(false), w = Open(true);
  EXPECT_TRUE(LockDisk(a.get(), path_, true).ok());
  EXPECT_TRUE(LockDisk(b.get(), path_, true).ok());
  EXPECT_FALSE(LockDisk(w.get(), path_, false).ok()) << "no writer beside readers";
}

TEST(Fdinfo, FindsALockOnOneInode) {
  const std::string text =
      "pos:\t0\nflags:\t0100002\nmnt_id:\t29\nino:\t1234\n"
      "lock:\t1: OFDLCK ADVISORY  WRITE -1 08:01:1234 0 EOF\n";
  EXPECT_TRUE(FdinfoHoldsLock(text, 8, 1, 1234));
  EXPECT_FALSE(FdinfoHoldsLock(text, 8, 1, 123)) << "another inode";
  EXPECT_FALSE(FdinfoHoldsLock(text, 8, 2, 1234)) << "another device";
  EXPECT_FALSE(
      FdinfoHoldsLock("lock:\t1: -> OFDLCK ADVISORY  WRITE -1 08:01:1234 0 EOF\n", 8, 1, 1234))
      << "a waiter is not a holder";
  EXPECT_FALSE(FdinfoHoldsLock("garbage\n\nlock:", 8, 1, 1234));
}

}  // namespace
}  // namespace edgevisor::block
