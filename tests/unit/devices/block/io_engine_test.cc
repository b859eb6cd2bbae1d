// The host I/O engines on a real file: write-zeroes without unmap must read back as zeros and
// keep the file's storage, also on a file system without FALLOC_FL_ZERO_RANGE (tmpfs), where the
// engines fall back to writing zeros.
#include "src/devices/block/io_engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace edgevisor::block {
namespace {

constexpr size_t kFileSize = 256 * 1024;

struct EngineCase {
  std::string name;
  bool uring;
};

class IoEngineTest : public ::testing::TestWithParam<EngineCase> {
 protected:
  void SetUp() override {
    // /dev/shm is tmpfs on Debian: the file system that lacks ZERO_RANGE.
    char path[] = "/dev/shm/edgevisor-io-engine-XXXXXX";
    fd_ = mkstemp(path);
    ASSERT_GE(fd_, 0);
    unlink(path);
    struct statfs fs {};
    ASSERT_EQ(fstatfs(fd_, &fs), 0);
    on_tmpfs_ = fs.f_type == TMPFS_MAGIC;
    std::vector<uint8_t> pattern(kFileSize, 0xab);
    ASSERT_EQ(pwrite(fd_, pattern.data(), pattern.size(), 0), static_cast<ssize_t>(kFileSize));
    auto e = GetParam().uring ? CreateUringEngine(fd_, 8) : CreateSyncEngine(fd_);
    if (!e.ok() && GetParam().uring) GTEST_SKIP() << "no io_uring here: " << e.status();
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = std::move(*e);
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
  }

  // Submits one operation and returns its result.
  int64_t Run(const IoOp& op) {
    EXPECT_TRUE(engine_->Submit(op).ok());
    engine_->Kick();
    int64_t result = INT64_MIN;
    for (int i = 0; i < 100 && result == INT64_MIN; ++i) {
      pollfd p{engine_->event_fd(), POLLIN, 0};
      poll(&p, 1, 100);
      engine_->Reap([&](uint64_t tag, int64_t res) {
        EXPECT_EQ(tag, op.tag);
        result = res;
      });
    }
    return result;
  }

  blkcnt_t Blocks() {
    struct stat st {};
    EXPECT_EQ(fstat(fd_, &st), 0);
    return st.st_blocks;
  }

  int fd_ = -1;
  bool on_tmpfs_ = false;
  std::unique_ptr<IoEngine> engine_;
};

TEST_P(IoEngineTest, WriteZeroesWithoutUnmapZeroesAndKeepsStorage) {
  const blkcnt_t before = Blocks();
  // Twice: the first one discovers that ZERO_RANGE is missing, the second one knows it.
  for (uint64_t tag : {7u, 8u}) {
    const uint64_t off = tag == 7 ? 4096 : 131072;
    IoOp op{IoOp::Kind::kWriteZeroes, off, 65536, nullptr, 0, false, tag};
    EXPECT_EQ(Run(op), 0);
  }
  std::vector<uint8_t> back(kFileSize);
  ASSERT_EQ(pread(fd_, back.data(), back.size(), 0), static_cast<ssize_t>(kFileSize));
  for (size_t i = 0; i < kFileSize; ++i) {
    const bool zeroed = (i >= 4096 && i < 4096 + 65536) || (i >= 131072 && i < 131072 + 65536);
    ASSERT_EQ(back[i], zeroed ? 0 : 0xab) << "byte " << i;
  }
  EXPECT_EQ(Blocks(), before) << "write-zeroes without unmap must not free storage";
  if (!on_tmpfs_) GTEST_SKIP() << "/dev/shm is not tmpfs: the fallback was not exercised";
}

TEST_P(IoEngineTest, WriteZeroesWithUnmapMayPunch) {
  IoOp op{IoOp::Kind::kWriteZeroes, 65536, 65536, nullptr, 0, true, 3};
  EXPECT_EQ(Run(op), 0);
  std::vector<uint8_t> back(65536);
  ASSERT_EQ(pread(fd_, back.data(), back.size(), 65536), 65536);
  for (size_t i = 0; i < back.size(); ++i) ASSERT_EQ(back[i], 0) << "byte " << i;
}

INSTANTIATE_TEST_SUITE_P(Engines, IoEngineTest,
                         ::testing::Values(EngineCase{"uring", true}, EngineCase{"sync", false}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace edgevisor::block
