// Growing the appliance's last GPT partition on a larger disk, checked with sfdisk (fdisk):
// a 64 MiB image laid out like the appliance's (the last partition ends 1 MiB before the disk's
// end), then "flashed" to a 256 MiB disk.
#include "src/appliance/gpt.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "tests/unit/tool_text.h"

namespace edgevisor::appliance::gpt {
namespace {

using ::testing::HasSubstr;

class GptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("disk.img");
    ASSERT_EQ(Sh(absl::StrFormat("truncate -s 64M %s && printf '%%s\\n' 'label: gpt' "
                                 "'start=2048, size=8192, name=ESP' "
                                 "'size=16384, name=root-A' 'size=8192, name=config' "
                                 "'size=94208, name=%s' | sfdisk -q %s",
                                 path_, last_name_, path_)),
              0)
        << "sfdisk (apt-get install fdisk)";
  }

  int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

  // The disk file as a gpt::Disk.
  Disk Open() {
    fd_ = open(path_.c_str(), O_RDWR);
    Disk d;
    d.bytes = static_cast<uint64_t>(lseek(fd_, 0, SEEK_END));
    d.read = [this](uint64_t off, absl::Span<uint8_t> out) {
      return pread(fd_, out.data(), out.size(), static_cast<off_t>(off)) ==
                     static_cast<ssize_t>(out.size())
                 ? absl::OkStatus()
                 : absl::DataLossError("short read");
    };
    d.write = [this](uint64_t off, absl::Span<const uint8_t> data) {
      return pwrite(fd_, data.data(), data.size(), static_cast<off_t>(off)) ==
                     static_cast<ssize_t>(data.size())
                 ? absl::OkStatus()
                 : absl::DataLossError("short write");
    };
    return d;
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
  }

  nlohmann::json Table() {
    const std::string out = dir_.File("t.json");
    EXPECT_EQ(std::system(absl::StrFormat("sfdisk --json %s > %s", path_, out).c_str()), 0);
    return nlohmann::json::parse(dir_.Read("t.json"))["partitiontable"];
  }

  testing::ScratchDir dir_;
  std::string path_;
  std::string last_name_ = "data";
  int fd_ = -1;
};

TEST_F(GptTest, TheLastPartitionTakesTheNewSpace) {
  ASSERT_EQ(Sh("truncate -s 256M " + path_), 0);
  auto g = GrowPartitionToEnd(Open(), "data");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(g->changed);
  EXPECT_EQ(g->number, 4);
  EXPECT_EQ(g->first_lba, 34816u);
  EXPECT_EQ(g->old_last_lba, 34816u + 94208 - 1);
  // 256 MiB = 524288 sectors; the backup GPT takes the last 33; the end is 1 MiB aligned.
  EXPECT_EQ(g->new_last_lba, 522239u);
  const nlohmann::json t = Table();
  EXPECT_EQ(t["lastlba"], 524254);
  EXPECT_EQ(t["partitions"][3]["start"], 34816);
  EXPECT_EQ(t["partitions"][3]["size"], 522240 - 34816);
  EXPECT_EQ(t["partitions"][3]["name"], "data");
  EXPECT_EQ(t["partitions"][0]["size"], 8192) << "the others stay as they were";
  // sfdisk finds both headers and the protective MBR consistent.
  EXPECT_EQ(std::system(("sfdisk --verify " + path_ + " > " + dir_.File("v") + " 2>&1").c_str()),
            0);
  EXPECT_THAT(dir_.Read("v"), HasSubstr("No errors detected."));
  // Once is enough.
  auto again = GrowPartitionToEnd(Open(), "data");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(again->new_last_lba, 522239u);
}

TEST_F(GptTest, NothingToDoOnADiskOfTheImagesSize) {
  auto g = GrowPartitionToEnd(Open(), "data");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_FALSE(g->changed);
}

TEST_F(GptTest, RefusesWhatItCannotGrowSafely) {
  ASSERT_EQ(Sh("truncate -s 256M " + path_), 0);
  auto missing = GrowPartitionToEnd(Open(), "scratch");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("no partition named 'scratch'"));
  auto not_last = GrowPartitionToEnd(Open(), "config");
  ASSERT_FALSE(not_last.ok());
  EXPECT_THAT(std::string(not_last.status().message()),
              HasSubstr("partition 'config' is not the last"));
  // One flipped byte in the primary header.
  ASSERT_EQ(Sh("printf 'X' | dd of=" + path_ + " bs=1 seek=600 conv=notrunc"), 0);
  auto bad = GrowPartitionToEnd(Open(), "data");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("header CRC mismatch"));
}

TEST(Crc32Test, KnownValues) {
  const std::string s = "123456789";
  EXPECT_EQ(Crc32(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size())),
            0xcbf43926u);
  EXPECT_EQ(Crc32({}), 0u);
}

}  // namespace
}  // namespace edgevisor::appliance::gpt
