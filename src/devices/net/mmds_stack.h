// The network side of the metadata service, per network interface: the frames the guest sends
// to the MMDS address never reach the TAP; this stack answers them itself. It speaks just what
// an HTTP client in the guest needs: ARP for the address, IPv4 (no fragments, no options out),
// and passive TCP on port 80 (handshake, in-order data, one request and its response per
// connection, then FIN; the guest's window and MSS respected; a lost segment of ours resent after
// three duplicate ACKs). The link is the VMM's own RX queue, which loses nothing the stack
// queues, so there are no retransmission timers: the stack wakes only for guest frames.
//
// Everything here reads guest bytes: each length and offset is checked against the frame. Bounded:
// kMaxConnections (the least recently active one makes room for a new one), kMaxQueuedFrames
// waiting for the guest's RX buffers, a request at most kMaxRequestBytes.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "src/devices/net/mmds_service.h"

namespace edgevisor::mmds {

// The MAC the service answers ARP with (Firecracker's choice, so guests see the same one).
inline constexpr std::array<uint8_t, 6> kMmdsMac = {0x06, 0x01, 0x23, 0x45, 0x67, 0x01};

struct StackCounters {
  std::atomic<uint64_t> rx_frames{0};     // guest frames the stack took
  std::atomic<uint64_t> rx_dropped{0};    // ... and dropped: malformed, not TCP/80, fragments
  std::atomic<uint64_t> tx_frames{0};     // frames made for the guest
  std::atomic<uint64_t> tx_dropped{0};    // ... and dropped: kMaxQueuedFrames waiting
  std::atomic<uint64_t> connections{0};   // TCP connections opened
  std::atomic<uint64_t> evictions{0};     // ... closed to make room for a new one
  std::atomic<uint64_t> requests{0};      // HTTP requests answered
  std::atomic<uint64_t> bad_requests{0};  // ... of them malformed or too long
};

class Stack {
 public:
  static constexpr size_t kMaxConnections = 64;
  static constexpr size_t kMaxQueuedFrames = 256;
  static constexpr uint16_t kHttpPort = 80;
  static constexpr uint16_t kDefaultMss = 536;  // RFC 9293's, when the SYN names none
  static constexpr uint16_t kMaxMss = 1460;
  // Enough of a frame to decide whether it is the stack's: Ethernet and an ARP body (IPv4's
  // destination address comes earlier).
  static constexpr size_t kClaimBytes = 14 + 28;

  Stack(std::shared_ptr<Service> service, std::array<uint8_t, 4> ipv4, StackCounters* counters)
      : service_(std::move(service)), ip_(ipv4), counters_(*counters) {}

  // Whether the guest frame starting with PREFIX (at most kClaimBytes of it) is the stack's:
  // ARP about the MMDS address, or IPv4 to it.
  bool Claims(absl::Span<const uint8_t> prefix) const;
  // A claimed guest frame (Ethernet, no virtio-net header): answered, or dropped.
  void OnGuestFrame(absl::Span<const uint8_t> frame, absl::Time now);

  bool has_frames() const { return !out_.empty(); }
  // The next frame for the guest (Ethernet, checksums filled in).
  std::vector<uint8_t> PopFrame();
  size_t connections() const { return conns_.size(); }

 private:
  struct Segment;
  struct Conn {
    std::array<uint8_t, 6> mac{};
    std::array<uint8_t, 4> ip{};
    uint16_t port = 0;
    bool established = false;
    uint32_t iss = 0, snd_una = 0, snd_nxt = 0, rcv_nxt = 0;
    uint16_t mss = kDefaultMss;
    uint32_t window = 0;  // the guest's, unscaled (the stack offers no window scaling)
    int dup_acks = 0;
    std::string request, response;
    bool responded = false, fin_received = false;
    absl::Time active;
    uint32_t fin_seq() const { return iss + 1 + static_cast<uint32_t>(response.size()); }
  };
  using Key = std::tuple<std::array<uint8_t, 4>, uint16_t>;  // the guest's address and port

  void OnArp(absl::Span<const uint8_t> frame);
  void OnTcp(const Segment& s, absl::Time now);
  void Accept(const Segment& s, absl::Time now);
  void OnAck(Conn& c, const Segment& s);
  void OnData(Conn& c, const Segment& s, absl::Time now);
  void Respond(Conn& c, absl::Time now);
  // Sends what the guest's window allows, then the FIN once the response is out; a bare ACK
  // when nothing else went and ACK is set.
  void Pump(Conn& c, bool ack);
  void Emit(const Conn& c, uint8_t flags, uint32_t seq, absl::Span<const uint8_t> payload,
            bool mss_option = false);
  void Reset(const Segment& s);
  void Queue(std::vector<uint8_t> frame);

  std::shared_ptr<Service> service_;
  const std::array<uint8_t, 4> ip_;
  StackCounters& counters_;
  std::map<Key, Conn> conns_;
  std::deque<std::vector<uint8_t>> out_;
  uint16_t ip_id_ = 0;
};

}  // namespace edgevisor::mmds
