// The update agent's logic: bundle headers, manifests, signatures (libsodium, and RFC 8032's own
// test vector), versions and what a box accepts; GRUB's environment block; appliance.json's
// "update" section.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <string>
#include <vector>

#include "src/appliance/bundle.h"
#include "src/appliance/config.h"
#include "src/appliance/grubenv.h"

namespace edgevisor::appliance {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> FromHex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::vector<uint8_t> Header(uint32_t len, uint8_t reserved = 0) {
  std::vector<uint8_t> h(bundle::kMagic, bundle::kMagic + 8);
  for (int i = 0; i < 4; ++i) h.push_back(static_cast<uint8_t>(len >> (8 * i)));
  for (int i = 0; i < 4; ++i) h.push_back(i == 0 ? reserved : 0);
  return h;
}

TEST(BundleHeader, ReadsTheManifestLength) {
  EXPECT_EQ(*bundle::ParseHeader(Header(300)), 300u);
  EXPECT_EQ(*bundle::ParseHeader(Header(65536)), 65536u);
}

TEST(BundleHeader, RefusesWhatIsNotOne) {
  auto h = Header(300);
  h[0] = 'X';
  EXPECT_THAT(bundle::ParseHeader(h).status().message(), HasSubstr("not an edgevisor update"));
  EXPECT_THAT(bundle::ParseHeader(Header(300, 1)).status().message(), HasSubstr("reserved"));
  EXPECT_THAT(bundle::ParseHeader(Header(65537)).status().message(), HasSubstr("65537 bytes"));
  EXPECT_THAT(bundle::ParseHeader(Header(1)).status().message(), HasSubstr("manifest of 1"));
  const auto short_header = Header(300);
  EXPECT_THAT(
      bundle::ParseHeader(absl::MakeConstSpan(short_header).subspan(0, 10)).status().message(),
      HasSubstr("truncated"));
}

constexpr char kManifest[] = R"({"format": 1, "arch": "x86_64", "version": "2.0.1",
  "min_version": "1.0", "slot": {"size": 18874368,
  "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
  "edgevisor": "abc123", "kernel": "linux-image-6.1", "created": 1790000000})";

TEST(BundleManifest, ReadsEveryField) {
  auto m = bundle::ParseManifest(kManifest);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->arch, "x86_64");
  EXPECT_EQ(m->version.text, "2.0.1");
  ASSERT_TRUE(m->min_version.has_value());
  EXPECT_EQ(m->min_version->text, "1.0");
  EXPECT_FALSE(m->allow_downgrade);
  EXPECT_EQ(m->slot_size, 18874368u);
  EXPECT_EQ(bundle::Hex(m->slot_sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(m->edgevisor, "abc123");
}

TEST(BundleManifest, ErrorsNameTheField) {
  auto bad = [](const std::string& from, const std::string& to) {
    std::string m = kManifest;
    m.replace(m.find(from), from.size(), to);
    return std::string(bundle::ParseManifest(m).status().message());
  };
  EXPECT_THAT(bad("\"format\": 1", "\"format\": 2"), HasSubstr("format: 2 is not 1"));
  EXPECT_THAT(bad("x86_64", "riscv64"), HasSubstr("arch: 'riscv64'"));
  EXPECT_THAT(bad("2.0.1", "2.0-rc1"), HasSubstr("version: '2.0-rc1' is not a version"));
  EXPECT_THAT(bad("\"1.0\"", "\"\""), HasSubstr("min_version"));
  EXPECT_THAT(bad("ba7816bf", "zz7816bf"), HasSubstr("slot.sha256: must be 64 hex digits"));
  EXPECT_THAT(bad("18874368", "12"), HasSubstr("slot.size"));
  EXPECT_THAT(bad("\"kernel\"", "\"colonel\""), HasSubstr("colonel: unknown field"));
  EXPECT_THAT(std::string(bundle::ParseManifest("{").status().message()), HasSubstr("JSON"));
  EXPECT_THAT(std::string(bundle::ParseManifest("[]").status().message()),
              HasSubstr("JSON object"));
}

TEST(BundleVersion, ComparesNumbersNotText) {
  auto v = [](const char* s) { return *bundle::ParseVersion(s); };
  EXPECT_LT(bundle::CompareVersions(v("1.9"), v("1.10")), 0);
  EXPECT_EQ(bundle::CompareVersions(v("1.2"), v("1.2.0")), 0);
  EXPECT_GT(bundle::CompareVersions(v("2"), v("1.999999.3")), 0);
  for (const char* bad : {"", "1..2", "a", "1.2.3.4.5", "-1", "1234567", "1.2 "}) {
    EXPECT_FALSE(bundle::ParseVersion(bad).ok()) << bad;
  }
}

TEST(BundleApplicable, ArchVersionAndMinimum) {
  auto m = *bundle::ParseManifest(kManifest);
  auto v = [](const char* s) { return *bundle::ParseVersion(s); };
  EXPECT_TRUE(bundle::CheckApplicable(m, "x86_64", v("1.5")).ok());
  EXPECT_THAT(bundle::CheckApplicable(m, "arm64", v("1.5")).message(),
              HasSubstr("the bundle is for x86_64; this box is arm64"));
  EXPECT_THAT(bundle::CheckApplicable(m, "x86_64", v("2.0.1")).message(),
              HasSubstr("is the same as the running 2.0.1"));
  EXPECT_THAT(bundle::CheckApplicable(m, "x86_64", v("3")).message(),
              HasSubstr("older than the running 3"));
  EXPECT_THAT(bundle::CheckApplicable(m, "x86_64", v("0.9")).message(),
              HasSubstr("updates from 1.0 or later; this box runs 0.9"));
  m.allow_downgrade = true;
  EXPECT_TRUE(bundle::CheckApplicable(m, "x86_64", v("3")).ok());
}

TEST(BundleSignature, Rfc8032TestVector1) {
  // RFC 8032, section 7.1, TEST 1: the empty message.
  const auto pk = FromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const auto sig = FromHex(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701c"
      "f9b46bd25bf5f0595bbe24655141438e7a100b");
  bundle::PublicKey key{};
  std::copy(pk.begin(), pk.end(), key.begin());
  EXPECT_TRUE(bundle::VerifySignature({}, sig, {key}).ok());
  auto flipped = sig;
  flipped[5] ^= 1;
  EXPECT_EQ(bundle::VerifySignature({}, flipped, {key}).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(BundleSignature, AnyTrustedKeyButNoOther) {
  ASSERT_GE(sodium_init(), 0);
  bundle::PublicKey pk1, pk2;
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> sk1, sk2;
  crypto_sign_keypair(pk1.data(), sk1.data());
  crypto_sign_keypair(pk2.data(), sk2.data());
  std::vector<uint8_t> msg = Header(20);
  msg.insert(msg.end(), 20, 'x');
  std::vector<uint8_t> sig(64);
  crypto_sign_detached(sig.data(), nullptr, msg.data(), msg.size(), sk1.data());
  EXPECT_TRUE(bundle::VerifySignature(msg, sig, {pk1}).ok());
  EXPECT_TRUE(bundle::VerifySignature(msg, sig, {pk2, pk1}).ok());  // a rotation's two keys
  EXPECT_THAT(bundle::VerifySignature(msg, sig, {pk2}).message(),
              HasSubstr("not by any of the 1 trusted key(s)"));
  msg[10] ^= 1;  // the manifest's length, under the signature
  EXPECT_FALSE(bundle::VerifySignature(msg, sig, {pk1}).ok());
  EXPECT_THAT(
      bundle::VerifySignature(msg, absl::MakeConstSpan(sig).subspan(0, 63), {pk1}).message(),
      HasSubstr("truncated"));
}

TEST(BundleKeys, OneHexKeyPerLine) {
  const std::string k(64, 'a');
  auto keys = bundle::ParseKeys("# trusted\n\n" + k + "\n  " + std::string(64, 'B') + "  \n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[1][0], 0xbb);
  EXPECT_THAT(bundle::ParseKeys(k + "\nnot-a-key\n").status().message(), HasSubstr("line 2"));
  EXPECT_THAT(bundle::ParseKeys("# none\n").status().message(), HasSubstr("no key"));
}

TEST(BundleHash, Sha256OfAbcInPieces) {
  bundle::Hasher h;
  const uint8_t a[] = {'a'}, bc[] = {'b', 'c'};
  h.Update(a);
  h.Update(bc);
  EXPECT_EQ(bundle::Hex(h.Finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

std::string Block(const std::string& vars) {
  std::string b = std::string(grubenv::kHeader) + vars;
  return b + std::string(grubenv::kBlockSize - b.size(), '#');
}

TEST(Grubenv, ReadsWhatImageBuildAndGrubWrite) {
  auto e = grubenv::Parse(Block("slot=A\n"));
  ASSERT_TRUE(e.ok()) << e.status();
  auto ab = grubenv::ReadAb(*e);
  EXPECT_EQ(ab.slot, 'A');
  EXPECT_EQ(ab.next_slot, 0);
  // grub.cfg at the end of a trial: next_slot and next_tries set to nothing.
  ab = grubenv::ReadAb(*grubenv::Parse(Block("slot=B\nnext_slot=\nnext_tries=\n")));
  EXPECT_EQ(ab.slot, 'B');
  EXPECT_EQ(ab.next_slot, 0);
  ab = grubenv::ReadAb(*grubenv::Parse(Block("slot=A\nnext_slot=B\nnext_tries=2\n")));
  EXPECT_EQ(ab.next_slot, 'B');
  EXPECT_EQ(ab.next_tries, 2);
}

TEST(Grubenv, RefusesWhatIsNotABlock) {
  EXPECT_FALSE(grubenv::Parse(std::string(1024, '#')).ok());
  EXPECT_FALSE(grubenv::Parse(Block("slot=A\n").substr(0, 1000)).ok());
  EXPECT_THAT(grubenv::Parse(Block("novalue\n")).status().message(), HasSubstr("NAME=VALUE"));
  std::string unended = std::string(grubenv::kHeader) + std::string(999, 'x');
  EXPECT_THAT(grubenv::Parse(unended).status().message(), HasSubstr("runs into"));
}

TEST(Grubenv, WritesEverythingIntoTheFirstSector) {
  grubenv::Env env;
  env.vars["other"] = "kept";
  grubenv::AbState s;
  s.slot = 'A';
  s.next_slot = 'B';
  s.next_tries = 3;
  auto block = grubenv::Render(grubenv::WithAb(env, s));
  ASSERT_TRUE(block.ok()) << block.status();
  ASSERT_EQ(block->size(), 1024u);
  EXPECT_EQ(block->substr(512), std::string(512, '#'));  // one sector changes, not two
  EXPECT_EQ(block->substr(0, 68),
            std::string(grubenv::kHeader) + "next_slot=B\nnext_tries=3\nother=kept\nslot=A\n");
  auto back = grubenv::Parse(*block);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->Get("other"), "kept");
  // Committed: no next_*.
  s.next_slot = 0;
  auto committed = grubenv::Parse(*grubenv::Render(grubenv::WithAb(*back, s)));
  EXPECT_EQ(committed->vars.count("next_slot"), 0u);
  // Escapes round-trip; too much for one sector is refused.
  env.vars["esc"] = "a\\b\nc";
  EXPECT_EQ(grubenv::Parse(*grubenv::Render(env))->Get("esc"), "a\\b\nc");
  env.vars["big"] = std::string(500, 'v');
  EXPECT_THAT(grubenv::Render(env).status().message(), HasSubstr("within one sector"));
}

TEST(ApplianceUpdateConfig, DefaultsParsingAndRender) {
  auto c = ParseApplianceConfig(R"({"name": "e"})", Stage::kRuntime);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->update.trial_boots, 3);
  EXPECT_EQ(c->update.health_timeout_s, 300);
  EXPECT_EQ(c->watchdog_s, 60);
  c = ParseApplianceConfig(R"({"name": "e", "watchdog_s": 0, "update": {"url":
      "http://10.0.2.2:8080/edge.bundle", "check_interval_s": 60, "trial_boots": 1,
      "health_timeout_s": 45}})",
                           Stage::kBuild);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->update.url, "http://10.0.2.2:8080/edge.bundle");
  EXPECT_EQ(c->update.trial_boots, 1);
  EXPECT_EQ(c->watchdog_s, 0);
  auto out = Render(*c, ".");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->appliance["update"]["url"], "http://10.0.2.2:8080/edge.bundle");
  EXPECT_EQ(out->appliance["update"]["health_timeout_s"], 45);
  EXPECT_EQ(out->appliance["watchdog_s"], 0);
  auto bad = [](const std::string& update) {
    return std::string(ParseApplianceConfig(R"({"name": "e", )" + update + "}", Stage::kRuntime)
                           .status()
                           .message());
  };
  EXPECT_THAT(bad(R"("update": {"url": "ftp://x"})"), HasSubstr("update.url: 'ftp://x'"));
  EXPECT_THAT(bad(R"("update": {"trial_boots": 4})"), HasSubstr("update.trial_boots: 4"));
  EXPECT_THAT(bad(R"("update": {"check_interval_s": 5})"), HasSubstr("update.check_interval_s"));
  EXPECT_THAT(bad(R"("update": {"health_timeout_s": 1})"), HasSubstr("update.health_timeout_s"));
  EXPECT_THAT(bad(R"("update": {"when": 1})"), HasSubstr("update.when: unknown field"));
  EXPECT_THAT(bad(R"("watchdog_s": 5)"), HasSubstr("watchdog_s: 5"));
}

}  // namespace
}  // namespace edgevisor::appliance
