// The snapshot state file's header and CBOR body (src/vmm/snapshot/file.cc): a round trip, then
// one malformed file per header field, each refused with a message that names the problem.
#include "src/vmm/snapshot/file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace edgevisor::snapshot {
namespace {

using ::testing::HasSubstr;

constexpr size_t kCrcOffset = 24;

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

void PutU32(std::string& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}
void PutU64(std::string& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}

// The CRC as file.h defines it: zlib's CRC-32 of the header with the CRC field zeroed, then of
// the state. Written here independently of file.cc, so that a file crafted by hand is valid.
void Seal(std::string& file) {
  std::string header = file.substr(0, kHeaderSize);
  PutU32(header, kCrcOffset, 0);
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(header.data()), kHeaderSize);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(file.data() + kHeaderSize),
              static_cast<uInt>(file.size() - kHeaderSize));
  PutU32(file, kCrcOffset, static_cast<uint32_t>(crc));
}

// A valid header for STATE (any bytes, CBOR or not), sealed.
std::string Craft(const std::string& state) {
  std::string f = Encode(Json::object(), "v1", Arch::kX86_64).substr(0, kHeaderSize);
  PutU64(f, 16, state.size());
  f += state;
  Seal(f);
  return f;
}

Json Sample() {
  return {{"config", {{"vcpus", 1}, {"mem_mib", 64}}},
          {"blob", Json::binary({1, 2, 3, 0, 255})},
          {"list", {1, -2, 3.5, "x", nullptr, true}}};
}

absl::Status DecodeX86(const std::string& f) { return Decode(Bytes(f), Arch::kX86_64).status(); }

TEST(SnapshotFileTest, RoundTrip) {
  const std::string f = Encode(Sample(), "edgevisor 1.2.3", Arch::kX86_64);
  ASSERT_GT(f.size(), kHeaderSize);
  EXPECT_EQ(f.substr(0, 8), "EVSNAPSH");
  auto d = Decode(Bytes(f), Arch::kX86_64);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state, Sample());
  EXPECT_TRUE(d->state["blob"].is_binary());
  EXPECT_EQ(d->vmm_version, "edgevisor 1.2.3");
}

TEST(SnapshotFileTest, RoundTripOnAarch64AndLongVersion) {
  const std::string f = Encode(Sample(), std::string(40, 'v'), Arch::kAarch64);
  auto d = Decode(Bytes(f), Arch::kAarch64);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state, Sample());
  EXPECT_EQ(d->vmm_version, std::string(31, 'v')) << "NUL-terminated in 32 bytes";
}

TEST(SnapshotFileTest, CraftedFileIsValid) {
  // The test's own sealing agrees with Encode's, so the malformed-CBOR tests below reach the
  // parser rather than the checksum.
  const std::vector<uint8_t> body = Json::to_cbor(Sample());
  const std::string f = Craft(std::string(body.begin(), body.end()));
  EXPECT_EQ(f, Encode(Sample(), "v1", Arch::kX86_64));
  EXPECT_TRUE(DecodeX86(f).ok());
}

TEST(SnapshotFileTest, ShorterThanTheHeader) {
  const std::string f = Encode(Sample(), "v1", Arch::kX86_64).substr(0, kHeaderSize - 1);
  absl::Status s = DecodeX86(f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("shorter than the 64-byte header"));
  EXPECT_THAT(DecodeX86("").message(), HasSubstr("truncated: 0 bytes"));
}

TEST(SnapshotFileTest, BadMagic) {
  std::string f = Encode(Sample(), "v1", Arch::kX86_64);
  f[0] = 'X';
  absl::Status s = DecodeX86(f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("bad magic"));
}

TEST(SnapshotFileTest, WrongFormatVersion) {
  std::string f = Encode(Sample(), "v1", Arch::kX86_64);
  PutU32(f, 8, kFormatVersion + 1);
  Seal(f);
  absl::Status s = DecodeX86(f);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("format version 2; this edgevisor reads version 1"));
}

TEST(SnapshotFileTest, UnknownArchitecture) {
  for (uint32_t arch : {0u, 3u, 0xffffffffu}) {
    SCOPED_TRACE(arch);
    std::string f = Encode(Sample(), "v1", Arch::kX86_64);
    PutU32(f, 12, arch);
    Seal(f);
    absl::Status s = DecodeX86(f);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("unknown architecture ", arch)));
  }
}

TEST(SnapshotFileTest, OtherArchitecture) {
  absl::Status s = Decode(Bytes(Encode(Sample(), "v1", Arch::kAarch64)), Arch::kX86_64).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("taken on aarch64; this host is x86_64"));
  s = Decode(Bytes(Encode(Sample(), "v1", Arch::kX86_64)), Arch::kAarch64).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("taken on x86_64; this host is aarch64"));
}

TEST(SnapshotFileTest, HostArchIsTheDefault) {
  const std::string f = Encode(Sample(), "v1");
  EXPECT_TRUE(Decode(Bytes(f)).ok());
}

TEST(SnapshotFileTest, StateLengthOverTheLimit) {
  std::string f = Encode(Sample(), "v1", Arch::kX86_64);
  for (uint64_t length : {kMaxStateBytes + 1, ~uint64_t{0}}) {
    SCOPED_TRACE(length);
    PutU64(f, 16, length);
    Seal(f);
    absl::Status s = DecodeX86(f);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("more than the limit of 67108864"));
  }
}

TEST(SnapshotFileTest, TruncatedState) {
  std::string f = Encode(Sample(), "v1", Arch::kX86_64);
  const size_t state = f.size() - kHeaderSize;
  f.pop_back();
  absl::Status s = DecodeX86(f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("truncated: the header says ", state,
                                                  " bytes of state, the file has ", state - 1)));
}

TEST(SnapshotFileTest, TrailingData) {
  std::string f = Encode(Sample(), "v1", Arch::kX86_64);
  const size_t state = f.size() - kHeaderSize;
  f += "x";
  absl::Status s = DecodeX86(f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("trailing data: the header says ", state,
                                                  " bytes of state, the file has ", state + 1)));
}

TEST(SnapshotFileTest, NonZeroReservedField) {
  for (size_t at : {28, 31}) {
    SCOPED_TRACE(at);
    std::string f = Encode(Sample(), "v1", Arch::kX86_64);
    f[at] = 1;
    Seal(f);
    absl::Status s = DecodeX86(f);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("reserved header field is not 0"));
  }
}

TEST(SnapshotFileTest, FlippedCrc) {
  std::string f = Encode(Sample(), "v1", Arch::kX86_64);
  f[kCrcOffset] ^= 0x01;
  absl::Status s = DecodeX86(f);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("checksum mismatch"));
  EXPECT_THAT(s.message(), HasSubstr("corrupt"));
}

TEST(SnapshotFileTest, FlippedStateOrVersionByte) {
  const std::string good = Encode(Sample(), "v1", Arch::kX86_64);
  for (size_t at : {kHeaderSize, good.size() - 1, size_t{32}, size_t{63}}) {
    SCOPED_TRACE(at);
    std::string f = good;
    f[at] ^= 0x40;
    absl::Status s = DecodeX86(f);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("checksum mismatch"));
  }
}

TEST(SnapshotFileTest, InvalidCborWithAValidCrc) {
  const std::vector<std::string> bad = {
      "",              // no document at all
      "\x1c",          // reserved additional information
      "\xff",          // a break outside an indefinite-length item
      "\x82\x01",      // an array of two with one element
      "\x01\x01",      // a second document after the first (strict)
      "\x62\x61",      // a two-byte string with one byte
      "\xa1\x01\x02",  // a map with a non-string key
  };
  for (const std::string& state : bad) {
    SCOPED_TRACE(::testing::PrintToString(state));
    absl::Status s = DecodeX86(Craft(state));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("not valid CBOR"));
  }
}

// Arrays (0x81: an array of one) and maps ({"a": ...}), nested DEPTH deep around a 0.
std::string Nested(size_t depth, bool maps = false) {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += maps ? std::string("\xa1\x61\x61", 3) : "\x81";
  return s + '\0';
}

TEST(SnapshotFileTest, NestingUpToTheLimitIsAccepted) {
  for (bool maps : {false, true}) {
    auto d = Decode(Bytes(Craft(Nested(16, maps))), Arch::kX86_64);
    ASSERT_TRUE(d.ok()) << d.status();
    const Json* j = &d->state;
    for (int i = 0; i < 16; ++i) j = maps ? &(*j)["a"] : &(*j)[0];
    EXPECT_EQ(*j, 0);
  }
}

TEST(SnapshotFileTest, NestingDeeperThan16Refused) {
  for (bool maps : {false, true}) {
    SCOPED_TRACE(maps ? "maps" : "arrays");
    absl::Status s = DecodeX86(Craft(Nested(17, maps)));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("nested deeper than 16 levels"));
  }
}

TEST(SnapshotFileTest, VeryDeepNestingDoesNotOverflowTheStack) {
  // Without the depth limit, nlohmann's CBOR reader recurses once per level: 100000 levels
  // exhaust an 8 MiB stack. The test passes when Decode returns at all.
  for (bool maps : {false, true}) {
    SCOPED_TRACE(maps ? "maps" : "arrays");
    absl::Status s = DecodeX86(Craft(Nested(100000, maps)));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("nested deeper than 16 levels"));
  }
}

TEST(SnapshotFileTest, ArchNames) {
  EXPECT_STREQ(ArchName(1), "x86_64");
  EXPECT_STREQ(ArchName(2), "aarch64");
  EXPECT_STREQ(ArchName(9), "an unknown architecture");
}

}  // namespace
}  // namespace edgevisor::snapshot
