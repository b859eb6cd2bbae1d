// RebaseMemoryFile (`edgevisor rebase-snap`): a Diff snapshot's memory file, sparse, goes onto
// its base at the same offsets; its holes leave the base alone, its zero pages do not.
#include "src/vmm/snapshot/rebase.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace edgevisor::snapshot {
namespace {

using ::testing::HasSubstr;

constexpr size_t kPage = 4096;
constexpr size_t kSize = 64 * kPage;

class RebaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rebase_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    base_ = dir_ + "/base.mem";
    diff_ = dir_ + "/diff.mem";
  }
  void TearDown() override { (void)!system(("rm -rf " + dir_).c_str()); }

  // A file of SIZE bytes; `pages` are written with FILL at their offsets, the rest are holes.
  void Make(const std::string& path, size_t size, const std::vector<size_t>& pages, uint8_t fill) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    const std::vector<uint8_t> page(kPage, fill);
    for (size_t p : pages) {
      ASSERT_EQ(pwrite(fd, page.data(), kPage, static_cast<off_t>(p * kPage)),
                static_cast<ssize_t>(kPage));
    }
    close(fd);
  }
  std::vector<uint8_t> Read(const std::string& path) {
    std::vector<uint8_t> out(kSize);
    int fd = open(path.c_str(), O_RDONLY);
    EXPECT_EQ(pread(fd, out.data(), kSize, 0), static_cast<ssize_t>(kSize));
    close(fd);
    return out;
  }

  std::string dir_, base_, diff_;
};

TEST_F(RebaseTest, TheDiffsPagesReplaceTheBasesAndNothingElse) {
  std::vector<size_t> all(64);
  for (size_t i = 0; i < 64; ++i) all[i] = i;
  Make(base_, kSize, all, 0xbb);
  Make(diff_, kSize, {3, 4, 40}, 0xdd);
  {  // page 63 of the diff: a dirty page that is all zeros, written as data
    int fd = open(diff_.c_str(), O_WRONLY);
    const std::vector<uint8_t> zero(kPage, 0);
    ASSERT_EQ(pwrite(fd, zero.data(), kPage, 63 * kPage), static_cast<ssize_t>(kPage));
    close(fd);
  }
  auto copied = RebaseMemoryFile(base_, diff_);
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(*copied, 4 * kPage);
  const std::vector<uint8_t> out = Read(base_);
  for (size_t p = 0; p < 64; ++p) {
    const uint8_t want = (p == 3 || p == 4 || p == 40) ? 0xdd : p == 63 ? 0 : 0xbb;
    EXPECT_EQ(out[p * kPage], want) << "page " << p;
    EXPECT_EQ(out[p * kPage + kPage - 1], want) << "page " << p;
  }
}

TEST_F(RebaseTest, AnEmptyDiffChangesNothing) {
  Make(base_, kSize, {0, 1}, 0xbb);
  Make(diff_, kSize, {}, 0);
  auto copied = RebaseMemoryFile(base_, diff_);
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(*copied, 0u);
  EXPECT_EQ(Read(base_)[kPage], 0xbb);
}

TEST_F(RebaseTest, BadFilesAreNamed) {
  Make(base_, kSize, {0}, 0xbb);
  Make(diff_, kSize + kPage, {0}, 0xdd);
  auto r = RebaseMemoryFile(base_, diff_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("--diff-file " + diff_ + " is 266240 bytes"));
  EXPECT_EQ(Read(base_)[0], 0xbb) << "nothing written";
  r = RebaseMemoryFile(base_, dir_ + "/missing");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("--diff-file " + dir_ + "/missing"));
  r = RebaseMemoryFile(dir_ + "/missing", diff_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("--base-file " + dir_ + "/missing"));
  r = RebaseMemoryFile(base_, dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("not a regular file"));
}

}  // namespace
}  // namespace edgevisor::snapshot
