// OpenForAppend, AppendOrDrop and AppendFileSink: regular files, and named pipes that nobody
// reads, that fill up, or whose reader goes away. Nothing here may block or raise SIGPIPE: a
// hang fails the test by its timeout.
#include "src/base/append_file.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "spdlog/logger.h"

namespace edgevisor {
namespace {

using ::testing::HasSubstr;

std::string Path(const std::string& name) {
  const std::string p = ::testing::TempDir() + "/append_file_test." + name;
  unlink(p.c_str());
  return p;
}

std::string ReadAllNonBlocking(const std::string& fifo) {
  const int fd = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  EXPECT_GE(fd, 0);
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST(AppendFileTest, ARegularFileIsCreatedAndAppendedTo) {
  const std::string p = Path("regular");
  for (const char* line : {"one\n", "two\n"}) {
    absl::StatusOr<UniqueFd> fd = OpenForAppend(p);
    ASSERT_TRUE(fd.ok()) << fd.status();
    EXPECT_EQ(*AppendOrDrop(fd->get(), line), 0u);
  }
  std::stringstream got;
  got << std::ifstream(p).rdbuf();
  EXPECT_EQ(got.str(), "one\ntwo\n");
  unlink(p.c_str());
}

TEST(AppendFileTest, AMissingDirectoryIsAnErrorNamingThePath) {
  absl::StatusOr<UniqueFd> fd = OpenForAppend("/nonexistent-dir/x.log");
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(std::string(fd.status().message()), HasSubstr("/nonexistent-dir/x.log"));
}

TEST(AppendFileTest, APipeNobodyReadsTakesWholeLinesUntilFullThenDrops) {
  const std::string p = Path("fifo");
  ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
  absl::StatusOr<UniqueFd> fd = OpenForAppend(p);  // no reader: must not wait for one
  ASSERT_TRUE(fd.ok()) << fd.status();
  const std::string line = std::string(99, 'x') + "\n";
  size_t written = 0, dropped = 0;
  for (int i = 0; i < 5000; ++i) {  // 500 KB, more than a pipe holds (64 KiB by default)
    absl::StatusOr<size_t> d = AppendOrDrop(fd->get(), line);
    ASSERT_TRUE(d.ok()) << d.status();
    (*d == 0 ? written : dropped) += 1;
    ASSERT_TRUE(*d == 0 || *d == line.size()) << "a short line is cut";
  }
  EXPECT_GT(written, 0u);
  EXPECT_GT(dropped, 0u) << "a full pipe drops lines instead of blocking";
  const std::string got = ReadAllNonBlocking(p);
  EXPECT_EQ(got.size(), written * line.size());
  EXPECT_EQ(got.find_first_not_of(line), std::string::npos);
  // Once read, the pipe takes lines again.
  EXPECT_EQ(*AppendOrDrop(fd->get(), line), 0u);
  unlink(p.c_str());
}

TEST(AppendFileTest, AReaderThatGoesAwayCostsNoSignalAndNoError) {
  const std::string p = Path("fifo-gone");
  ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
  absl::StatusOr<UniqueFd> fd = OpenForAppend(p);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(ReadAllNonBlocking(p), "");  // a reader came and went
  // The writer holds a read end itself: no EPIPE, no SIGPIPE (which would end this test).
  EXPECT_EQ(*AppendOrDrop(fd->get(), "after\n"), 0u);
  EXPECT_EQ(ReadAllNonBlocking(p), "after\n");
  unlink(p.c_str());
}

TEST(AppendFileTest, TheSinkLogsIntoAPipeAndCountsWhatDidNotFit) {
  const std::string p = Path("fifo-sink");
  ASSERT_EQ(mkfifo(p.c_str(), 0600), 0);
  absl::StatusOr<UniqueFd> fd = OpenForAppend(p);
  ASSERT_TRUE(fd.ok());
  auto sink = std::make_shared<AppendFileSink>(*std::move(fd));
  spdlog::logger log("vm1", sink);
  log.set_pattern("[%n] %v");
  log.info("first");
  EXPECT_EQ(sink->dropped_bytes(), 0u);
  EXPECT_EQ(ReadAllNonBlocking(p), "[vm1] first\n");
  for (int i = 0; i < 2000; ++i) log.warn("{}", std::string(200, 'y'));
  EXPECT_GT(sink->dropped_bytes(), 0u);
  EXPECT_EQ(sink->dropped_bytes() % std::string("[vm1] " + std::string(200, 'y') + "\n").size(), 0u)
      << "whole lines are dropped";
  unlink(p.c_str());
}

}  // namespace
}  // namespace edgevisor
