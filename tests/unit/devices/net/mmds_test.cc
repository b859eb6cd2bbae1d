// The metadata service below the device: its HTTP parser, its data store and request handling,
// and its network stack, fed the Ethernet frames a guest would send.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/devices/net/mmds_http.h"
#include "src/devices/net/mmds_service.h"
#include "src/devices/net/mmds_stack.h"

namespace edgevisor::mmds {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

// ---- HTTP -------------------------------------------------------------------------------------

TEST(MmdsHttpTest, ParsesARequestAndWaitsForTheRest) {
  const std::string req =
      "GET /latest/meta-data/?x=1 HTTP/1.1\r\nHost: 169.254.169.254\r\nAccept:  application/json "
      "\r\n\r\n";
  for (size_t n = 0; n < req.size(); ++n) {
    auto r = ParseRequest(req.substr(0, n));
    ASSERT_TRUE(r.ok()) << n << ": " << r.status();
    EXPECT_FALSE(r->has_value()) << "complete after " << n << " bytes";
  }
  auto r = ParseRequest(req + "GET /next");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status();
  EXPECT_EQ((*r)->method, "GET");
  EXPECT_EQ((*r)->path, "/latest/meta-data/");
  EXPECT_EQ((*r)->Header("accept"), "application/json");
  EXPECT_EQ((*r)->Header("host"), "169.254.169.254");
  EXPECT_EQ((*r)->consumed, req.size());
  auto body = ParseRequest("PUT /t HTTP/1.0\nContent-Length: 3\n\nabcdef");
  ASSERT_TRUE(body.ok() && body->has_value());
  EXPECT_EQ((*body)->body, "abc");
}

TEST(MmdsHttpTest, MalformedRequestsAreRefusedWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"GET / HTTP/2\r\n\r\n", "HTTP/1.0 or HTTP/1.1"},
      {"GET /\r\n\r\n", "request line"},
      {"GET relative HTTP/1.1\r\n\r\n", "absolute path"},
      {"G(T / HTTP/1.1\r\n\r\n", "method"},
      {"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", "folded"},
      {"GET / HTTP/1.1\r\nNo colon\r\n\r\n", "without ':'"},
      {"GET / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n", "twice"},
      {"GET / HTTP/1.1\r\nA: \x01\r\n\r\n", "control byte"},
      {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "Content-Length"},
      {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding"},
  };
  for (const auto& [req, why] : cases) {
    auto r = ParseRequest(req);
    ASSERT_FALSE(r.ok()) << req;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(why)) << req;
  }
  auto big = ParseRequest("GET / HTTP/1.1\r\nX: " + std::string(kMaxRequestBytes, 'x'));
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(big.status()));
  auto big_body = ParseRequest("PUT / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
  EXPECT_TRUE(absl::IsResourceExhausted(big_body.status()));
}

// ---- the service ------------------------------------------------------------------------------

HttpRequest Get(const std::string& path, std::map<std::string, std::string> headers = {}) {
  HttpRequest r;
  r.method = "GET";
  r.path = path;
  r.headers = std::move(headers);
  return r;
}

const Json kData = Json::parse(R"({"latest": {"meta-data": {"ami-id": "ami-1",
    "network": {"mac": "aa"}, "count": 3}}, "user": "hello"})");

TEST(MmdsServiceTest, TheStoreTakesObjectsWithinItsLimitAndMergePatches) {
  Service s(200);
  EXPECT_FALSE(s.Put(Json::array()).ok());
  EXPECT_FALSE(s.Patch({{"a", 1}}).ok()) << "nothing to patch yet";
  auto big = s.Put({{"a", std::string(300, 'x')}});
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(std::string(big.message()), HasSubstr("200-byte limit"));
  ASSERT_TRUE(s.Put({{"a", 1}, {"b", {{"c", 2}}}}).ok());
  ASSERT_TRUE(s.Patch({{"a", nullptr}, {"b", {{"d", 3}}}}).ok());
  EXPECT_EQ(s.Get(), Json::parse(R"({"b": {"c": 2, "d": 3}})"));
  EXPECT_FALSE(s.Patch({{"x", std::string(300, 'y')}}).ok());
  EXPECT_EQ(s.Get(), Json::parse(R"({"b": {"c": 2, "d": 3}})"))
      << "a refused patch changes nothing";
}

TEST(MmdsServiceTest, GetAnswersInImdsTextOrJson) {
  Service s;
  ASSERT_TRUE(s.Put(kData).ok());
  const absl::Time now = absl::Now();
  HttpResponse dir = s.Handle(Get("/latest/meta-data/"), now);
  EXPECT_EQ(dir.status, 200);
  EXPECT_EQ(dir.body, "ami-id\ncount\nnetwork/");
  EXPECT_EQ(s.Handle(Get("/latest/meta-data/ami-id"), now).body, "ami-1");
  EXPECT_EQ(s.Handle(Get("/latest/meta-data/count"), now).status, 501) << "no text form";
  HttpResponse json =
      s.Handle(Get("/latest/meta-data/count", {{"accept", "application/json"}}), now);
  EXPECT_EQ(json.status, 200);
  EXPECT_EQ(json.body, "3");
  EXPECT_EQ(json.content_type, "application/json");
  EXPECT_EQ(s.Handle(Get("/latest/nothing"), now).status, 404);
  EXPECT_EQ(s.Handle(Get("/user/deeper"), now).status, 404);
  HttpRequest post = Get("/");
  post.method = "POST";
  EXPECT_EQ(s.Handle(post, now).status, 405);
  s.Configure(MmdsConfig::Version::kV1, /*imds_compat=*/true);
  EXPECT_EQ(s.Handle(Get("/user", {{"accept", "application/json"}}), now).body, "hello");
}

TEST(MmdsServiceTest, VersionTwoAsksForASessionToken) {
  Service s;
  ASSERT_TRUE(s.Put(kData).ok());
  s.Configure(MmdsConfig::Version::kV2, false);
  const absl::Time now = absl::Now();
  EXPECT_EQ(s.Handle(Get("/user"), now).status, 401);
  HttpRequest put = Get("/latest/api/token", {{"x-metadata-token-ttl-seconds", "60"}});
  put.method = "PUT";
  HttpResponse token = s.Handle(put, now);
  ASSERT_EQ(token.status, 200);
  EXPECT_EQ(token.body.size(), 43u) << "32 random bytes, base64";
  EXPECT_EQ(s.Handle(Get("/user", {{"x-metadata-token", token.body}}), now).body, "hello");
  EXPECT_EQ(
      s.Handle(Get("/user", {{"x-metadata-token", token.body}}), now + absl::Seconds(61)).status,
      401)
      << "expired";
  EXPECT_EQ(s.Handle(Get("/user", {{"x-metadata-token", "forged"}}), now).status, 401);
  for (const char* ttl : {"0", "21601", "x", "-5"}) {
    put.headers["x-metadata-token-ttl-seconds"] = ttl;
    EXPECT_EQ(s.Handle(put, now).status, 400) << ttl;
  }
  put.headers["x-metadata-token-ttl-seconds"] = "10";
  put.headers["x-forwarded-for"] = "10.0.0.1";
  EXPECT_EQ(s.Handle(put, now).status, 400) << "not through a proxy";
  put.headers.erase("x-forwarded-for");
  put.path = "/user";
  EXPECT_EQ(s.Handle(put, now).status, 405);
}

// ---- the network stack ------------------------------------------------------------------------

constexpr std::array<uint8_t, 6> kGuestMac = {0x52, 0x54, 0, 0, 0, 1};
constexpr std::array<uint8_t, 4> kGuestIp = {10, 0, 0, 2};
constexpr std::array<uint8_t, 4> kMmdsIp = {169, 254, 169, 254};
constexpr uint8_t kFin = 1, kSyn = 2, kRst = 4, kAck = 16;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Be32(const uint8_t* p) { return uint32_t{Be16(p)} << 16 | Be16(p + 2); }

uint16_t Checksum(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += Be16(p + i);
  if (n % 2) acc += uint32_t{p[n - 1]} << 8;
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

// A guest's TCP segment to the MMDS address (no options but MSS, checksums left 0: the device
// does not check them, as a guest offloading checksums leaves them partial).
std::vector<uint8_t> GuestSegment(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                                  uint8_t flags, const std::string& data = "",
                                  uint16_t window = 65535, uint16_t mss = 0) {
  const size_t opt = mss ? 4 : 0, tcp_len = 20 + opt + data.size();
  std::vector<uint8_t> f(14 + 20 + tcp_len);
  std::copy(kMmdsMac.begin(), kMmdsMac.end(), f.begin());
  std::copy(kGuestMac.begin(), kGuestMac.end(), f.begin() + 6);
  f[12] = 0x08;
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>((20 + tcp_len) >> 8);
  ip[3] = static_cast<uint8_t>(20 + tcp_len);
  ip[8] = 64;
  ip[9] = 6;
  std::copy(kGuestIp.begin(), kGuestIp.end(), ip + 12);
  std::copy(kMmdsIp.begin(), kMmdsIp.end(), ip + 16);
  uint8_t* t = ip + 20;
  t[0] = static_cast<uint8_t>(sport >> 8), t[1] = static_cast<uint8_t>(sport);
  t[2] = static_cast<uint8_t>(dport >> 8), t[3] = static_cast<uint8_t>(dport);
  for (int i = 0; i < 4; ++i) t[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  for (int i = 0; i < 4; ++i) t[8 + i] = static_cast<uint8_t>(ack >> (24 - 8 * i));
  t[12] = static_cast<uint8_t>(((20 + opt) / 4) << 4);
  t[13] = flags;
  t[14] = static_cast<uint8_t>(window >> 8), t[15] = static_cast<uint8_t>(window);
  if (mss)
    t[20] = 2, t[21] = 4, t[22] = static_cast<uint8_t>(mss >> 8), t[23] = static_cast<uint8_t>(mss);
  std::copy(data.begin(), data.end(), t + 20 + opt);
  return f;
}

struct Out {
  uint32_t seq, ack;
  uint8_t flags;
  uint16_t mss;  // 0: none
  std::string data;
};

class MmdsStackTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(service_->Put(kData).ok()); }
  void Send(const std::vector<uint8_t>& f) { stack_.OnGuestFrame(f, absl::Now()); }
  // What the stack queued for the guest, each frame checked (MACs, addresses, checksums).
  std::vector<Out> Take() {
    std::vector<Out> out;
    while (stack_.has_frames()) {
      std::vector<uint8_t> f = stack_.PopFrame();
      EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), f.begin()));
      EXPECT_TRUE(std::equal(kMmdsMac.begin(), kMmdsMac.end(), f.begin() + 6));
      const uint8_t* ip = &f[14];
      EXPECT_EQ(Checksum(ip, 20), 0) << "IPv4 header checksum";
      EXPECT_TRUE(std::equal(kMmdsIp.begin(), kMmdsIp.end(), ip + 12));
      EXPECT_TRUE(std::equal(kGuestIp.begin(), kGuestIp.end(), ip + 16));
      const size_t tcp_len = Be16(ip + 2) - 20u;
      EXPECT_EQ(f.size(), 34 + tcp_len);
      uint32_t pseudo = Be16(ip + 12) + Be16(ip + 14) + Be16(ip + 16) + Be16(ip + 18) + 6 +
                        static_cast<uint32_t>(tcp_len);
      EXPECT_EQ(Checksum(ip + 20, tcp_len, pseudo), 0) << "TCP checksum";
      const uint8_t* t = ip + 20;
      const size_t doff = (t[12] >> 4) * 4u;
      Out o{Be32(t + 4), Be32(t + 8), t[13], static_cast<uint16_t>(doff == 24 ? Be16(t + 22) : 0),
            std::string(reinterpret_cast<const char*>(t + doff), tcp_len - doff)};
      out.push_back(o);
    }
    return out;
  }
  // Handshake from guest port PORT: returns the stack's ISS.
  uint32_t Connect(uint16_t port, uint32_t seq = 1000, uint16_t window = 65535) {
    Send(GuestSegment(port, 80, seq, 0, kSyn, "", window, 1400));
    std::vector<Out> o = Take();
    EXPECT_EQ(o.size(), 1u);
    if (o.empty()) return 0;
    EXPECT_EQ(o[0].flags, kSyn | kAck);
    EXPECT_EQ(o[0].ack, seq + 1);
    EXPECT_EQ(o[0].mss, 1460);
    Send(GuestSegment(port, 80, seq + 1, o[0].seq + 1, kAck, "", window));
    EXPECT_TRUE(Take().empty()) << "nothing answers a bare ACK";
    return o[0].seq;
  }

  std::shared_ptr<Service> service_ = std::make_shared<Service>();
  StackCounters counters_;
  Stack stack_{service_, kMmdsIp, &counters_};
};

TEST_F(MmdsStackTest, ArpForTheServiceAddressIsAnswered) {
  std::vector<uint8_t> arp(42);
  std::fill(arp.begin(), arp.begin() + 6, 0xff);
  std::copy(kGuestMac.begin(), kGuestMac.end(), arp.begin() + 6);
  arp[12] = 0x08, arp[13] = 0x06;
  const uint8_t body[] = {0, 1, 8, 0, 6, 4, 0, 1};
  std::copy(std::begin(body), std::end(body), arp.begin() + 14);
  std::copy(kGuestMac.begin(), kGuestMac.end(), arp.begin() + 22);
  std::copy(kGuestIp.begin(), kGuestIp.end(), arp.begin() + 28);
  std::copy(kMmdsIp.begin(), kMmdsIp.end(), arp.begin() + 38);
  ASSERT_TRUE(stack_.Claims(arp));
  Send(arp);
  ASSERT_TRUE(stack_.has_frames());
  std::vector<uint8_t> r = stack_.PopFrame();
  ASSERT_EQ(r.size(), 42u);
  EXPECT_EQ(Be16(&r[20]), 2) << "a reply";
  EXPECT_TRUE(std::equal(kMmdsMac.begin(), kMmdsMac.end(), &r[22]));
  EXPECT_TRUE(std::equal(kMmdsIp.begin(), kMmdsIp.end(), &r[28]));
  EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), &r[32]));
  // Another address is the TAP's business.
  arp[41] = 1;
  EXPECT_FALSE(stack_.Claims(arp));
  std::vector<uint8_t> other = GuestSegment(1, 80, 0, 0, kSyn);
  other[14 + 19] = 1;
  EXPECT_FALSE(stack_.Claims(other));
}

TEST_F(MmdsStackTest, ARequestIsAnsweredAndTheConnectionCloses) {
  const uint32_t iss = Connect(40000);
  const std::string req = "GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: x\r\n\r\n";
  Send(GuestSegment(40000, 80, 1001, iss + 1, kAck, req));
  std::vector<Out> o = Take();
  ASSERT_EQ(o.size(), 2u) << "the response in one segment, then FIN";
  EXPECT_EQ(o[0].seq, iss + 1);
  EXPECT_EQ(o[0].ack, 1001 + req.size());
  EXPECT_THAT(o[0].data, HasSubstr("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(o[0].data, HasSubstr("\r\n\r\nami-1"));
  EXPECT_EQ(o[1].flags & kFin, kFin);
  EXPECT_EQ(o[1].seq, iss + 1 + o[0].data.size());
  const uint32_t end = o[1].seq + 1;
  Send(GuestSegment(40000, 80, 1001 + req.size(), end, kAck | kFin));
  o = Take();
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].flags, kAck);
  EXPECT_EQ(o[0].ack, 1001 + req.size() + 1) << "the guest's FIN acknowledged";
  EXPECT_EQ(stack_.connections(), 0u);
  EXPECT_EQ(counters_.requests.load(), 1u);
}

TEST_F(MmdsStackTest, TheResponseKeepsToTheGuestsWindowAndMss) {
  Json big = kData;
  big["blob"] = std::string(5000, 'z');
  ASSERT_TRUE(service_->Put(big).ok());
  const uint32_t iss = Connect(40001, 1000, 1000);
  const std::string req = "GET /blob HTTP/1.1\r\n\r\n";
  Send(GuestSegment(40001, 80, 1001, iss + 1, kAck, req, 1000));
  std::string got;
  uint32_t acked = iss + 1;
  for (int round = 0; round < 20; ++round) {
    std::vector<Out> o = Take();
    size_t in_flight = 0;
    for (const Out& s : o) {
      EXPECT_LE(s.data.size(), 1000u);
      in_flight += s.data.size();
      got += s.data;
      if (s.flags & kFin) round = 100;
    }
    EXPECT_LE(in_flight, 1000u) << "more than the window at once";
    acked += static_cast<uint32_t>(in_flight);
    Send(GuestSegment(40001, 80, 1001 + req.size(), acked, kAck, "", 1000));
  }
  EXPECT_THAT(got, HasSubstr(std::string(5000, 'z')));
}

TEST_F(MmdsStackTest, ThreeDuplicateAcksBringBackALostSegment) {
  Json big = kData;
  big["blob"] = std::string(3000, 'q');
  ASSERT_TRUE(service_->Put(big).ok());
  const uint32_t iss = Connect(40002);
  const std::string req = "GET /blob HTTP/1.1\r\n\r\n";
  const uint32_t seq = 1001 + static_cast<uint32_t>(req.size());
  Send(GuestSegment(40002, 80, 1001, iss + 1, kAck, req));
  std::vector<Out> first = Take();
  ASSERT_GE(first.size(), 3u);  // 1400-byte segments and a FIN
  // The first segment was lost: the guest acknowledges only the handshake, three times.
  for (int i = 0; i < 3; ++i) Send(GuestSegment(40002, 80, seq, iss + 1, kAck));
  std::vector<Out> again = Take();
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again[0].seq, iss + 1);
  EXPECT_EQ(again[0].data, first[0].data);
}

TEST_F(MmdsStackTest, StraySegmentsGetRstAndFloodsStayBounded) {
  Send(GuestSegment(5, 80, 77, 99, kAck, "data"));
  std::vector<Out> o = Take();
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].flags, kRst);
  EXPECT_EQ(o[0].seq, 99u);
  Send(GuestSegment(6, 81, 77, 0, kSyn));
  o = Take();
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].flags, kRst | kAck) << "port 81 is closed";
  EXPECT_EQ(o[0].ack, 78u);
  for (uint16_t port = 1000; port < 1300; ++port) Send(GuestSegment(port, 80, 1, 0, kSyn));
  EXPECT_EQ(stack_.connections(), Stack::kMaxConnections);
  EXPECT_EQ(counters_.evictions.load(), 300 - Stack::kMaxConnections);
  size_t queued = 0;
  while (stack_.has_frames()) queued += (stack_.PopFrame(), 1);
  EXPECT_EQ(queued, Stack::kMaxQueuedFrames) << "the rest dropped";
  EXPECT_EQ(counters_.tx_dropped.load(), 300 - Stack::kMaxQueuedFrames);
}

TEST_F(MmdsStackTest, MalformedFramesAreDropped) {
  std::vector<uint8_t> f = GuestSegment(1, 80, 1, 0, kSyn);
  std::vector<std::vector<uint8_t>> bad;
  bad.push_back(std::vector<uint8_t>(f.begin(), f.begin() + 40));  // cut inside TCP
  auto with = [&](size_t at, uint8_t v) {
    std::vector<uint8_t> g = f;
    g[at] = v;
    bad.push_back(g);
  };
  with(14, 0x46);            // IHL 6: the header runs into TCP, total length too short for both
  with(14, 0x65);            // IPv6 version
  with(14 + 6, 0x20);        // more fragments
  with(14 + 9, 17);          // UDP
  with(14 + 3, 0xff);        // total length past the frame
  with(14 + 20 + 12, 0xf0);  // data offset 60
  with(14 + 20 + 12, 0x10);  // data offset 4
  for (const auto& g : bad) Send(g);
  EXPECT_EQ(counters_.rx_dropped.load(), bad.size());
  EXPECT_FALSE(stack_.has_frames());
  EXPECT_EQ(stack_.connections(), 0u);
}

TEST_F(MmdsStackTest, AnOversizedRequestGets413) {
  const uint32_t iss = Connect(40003);
  uint32_t seq = 1001;
  const std::string chunk = "GET / HTTP/1.1\r\nX: " + std::string(1000, 'a');
  std::string got;
  for (int i = 0; i < 10; ++i) {
    Send(GuestSegment(40003, 80, seq, iss + 1, kAck, chunk));
    seq += static_cast<uint32_t>(chunk.size());
    for (const Out& o : Take()) got += o.data;
  }
  EXPECT_THAT(got, HasSubstr("HTTP/1.1 413 "));
  EXPECT_EQ(counters_.bad_requests.load(), 1u);
}

}  // namespace
}  // namespace edgevisor::mmds
