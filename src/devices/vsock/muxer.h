// The host side of virtio-vsock, in Firecracker's design: one listening Unix socket (uds_path)
// for connections into the guest, and "<uds_path>_<port>" for the guest's connections out.
//
//   host -> guest  a host process connects to uds_path and writes "CONNECT <port>\n"; the muxer
//                  sends REQUEST to that guest port and, on the guest's RESPONSE, writes
//                  "OK <host port>\n" back; from then on the socket carries the stream.
//   guest -> host  the guest's REQUEST to host port P connects to "<uds_path>_P" (a RST when
//                  nothing listens there), answered with RESPONSE.
//
// Flow control both ways is by credit (§5.10.6.3): host data is read only as far as the guest
// has buffer space, and the guest may send at most kConnBufAlloc bytes the host has not taken
// yet (more is an overrun: RST). Nothing is buffered without bound: packets for the guest are
// made when the guest has a receive buffer for them, and the control packets that wait for one
// (at most kMaxControl) stop the device from reading the guest's TX queue until they are gone.
//
// All of it runs on the device's worker thread: the muxer's own event set (host sockets, the
// listener, a timer for deadlines) is one fd in the worker's.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/base/event_set.h"
#include "src/base/fd.h"
#include "src/devices/vsock/connection.h"
#include "src/devices/vsock/packet.h"

namespace edgevisor::vsock {

// Firecracker's vsock metrics, as far as they apply.
struct VsockCounters {
  std::atomic<uint64_t> rx_packets{0}, rx_bytes{0};  // to the guest (its RX queue)
  std::atomic<uint64_t> tx_packets{0}, tx_bytes{0};  // from the guest
  std::atomic<uint64_t> conns_added{0};              // connections established or being set up
  std::atomic<uint64_t> conns_killed{0};             // ended by a RST for a fault (either side's)
  std::atomic<uint64_t> conns_removed{0};            // every connection that ended
  std::atomic<uint64_t> rx_read_fails{0};            // a host socket's read failed
  std::atomic<uint64_t> tx_write_fails{0};           // a host socket's write failed
  std::atomic<uint64_t> bad_packets{0};              // guest packets refused (RST or dropped)
  std::atomic<uint64_t> refused_host_conns{0};       // host connections refused (bad line, limits)
};

class Muxer {
 public:
  static constexpr size_t kMaxConnections = 1024;  // established or being set up
  static constexpr size_t kMaxAwaitingLine = 64;   // host sockets that have not said CONNECT
  static constexpr size_t kMaxControl = 512;       // control packets waiting for RX buffers
  static constexpr size_t kMaxLine = 32;           // "CONNECT 4294967295\n" is 19
  static constexpr absl::Duration kSetupTimeout = absl::Seconds(2);
  // Host-initiated connections get host ports from here up (Firecracker's choice too: far from
  // the ports services listen on).
  static constexpr uint32_t kFirstLocalPort = 1u << 30;

  // Listens on UDS_PATH (which must not exist yet: a leftover is refused, as Firecracker does).
  static absl::StatusOr<std::unique_ptr<Muxer>> Create(uint64_t guest_cid, std::string uds_path,
                                                       VsockCounters* counters);
  ~Muxer();  // closes every socket and removes uds_path

  // Readable while a host socket, the listener or the deadline timer needs attention.
  int fd() const { return events_.fd(); }
  // Handles what is ready now, without blocking.
  void ProcessHostEvents();

  // One packet from the guest's TX queue whose payload CheckPayload accepted.
  void OnGuestPacket(const Header& hdr, absl::Span<const uint8_t> data);
  // One whose payload it refused (WHY): the connection it names, if any, is reset.
  void OnBadGuestPacket(const Header& hdr, const absl::Status& why);
  // Too many control packets wait for the guest's RX buffers: read no more TX packets.
  bool backlogged() const { return control_.size() >= kMaxControl; }

  // Whether NextRx may have a packet.
  bool has_rx() const { return !control_.empty() || !credit_due_.empty() || !ready_.empty(); }
  // The next packet for the guest, with at most MAX_DATA payload bytes; nullopt when none.
  std::optional<Packet> NextRx(uint32_t max_data);

  // Ends every connection (their host sockets closed): the device was reset, or the guest is
  // told of a transport reset (after a restore).
  void ResetAll();
  size_t connections() const { return conns_.size(); }

 private:
  Muxer(uint64_t guest_cid, std::string uds_path, VsockCounters* counters)
      : guest_cid_(guest_cid), uds_path_(std::move(uds_path)), counters_(*counters) {}

  using Key = std::pair<uint32_t, uint32_t>;  // (host port, guest port)

  // Host side.
  void Accept();
  void OnConnectionEvent(uint32_t id);
  void ReadLine(Connection& c);
  void Flush(Connection& c);
  void OnTimer();
  void ArmTimer(absl::Time deadline);
  void UpdateInterest(Connection& c);
  std::optional<Packet> ReadData(Connection& c, uint32_t max_data);

  // Guest side.
  void ConnectToHost(const Header& hdr);
  void OnEstablishedPacket(Connection& c, const Header& hdr, absl::Span<const uint8_t> data);
  void OnGuestData(Connection& c, absl::Span<const uint8_t> data);
  void OnGuestShutdown(Connection& c, uint32_t flags);
  void AfterFlush(Connection& c);

  // Connections.
  Connection* Find(Key key);
  Connection* Add(UniqueFd fd, Connection::State state);
  void Remove(Connection& c);
  // Sends RST for C's ports and removes it (a fault: counted as killed).
  void Kill(Connection& c, const std::string& why);
  void QueueControl(uint16_t op, uint32_t local_port, uint32_t peer_port, uint32_t flags = 0);
  void QueueReply(const Header& to, uint16_t op) { QueueControl(op, to.dst_port, to.src_port); }
  void QueueCreditUpdate(Connection& c);
  // A header from the host to the guest for OP, without payload.
  Header HostHeader(uint16_t op, uint32_t local_port, uint32_t peer_port, uint32_t fwd_cnt) const;
  // The same for connection C (its ports, its fwd_cnt, noted as told).
  Header HeaderFor(Connection& c, uint16_t op);

  const uint64_t guest_cid_;
  const std::string uds_path_;
  VsockCounters& counters_;
  UniqueFd listener_;
  UniqueFd timer_;
  absl::Time timer_armed_ = absl::InfiniteFuture();
  EventSet events_;
  uint32_t next_id_ = 1;
  uint32_t next_local_port_ = kFirstLocalPort;
  size_t awaiting_line_ = 0;
  std::map<uint32_t, std::unique_ptr<Connection>> conns_;  // by id
  std::map<Key, uint32_t> by_ports_;                       // kConnecting and kEstablished
  std::deque<Header> control_;       // headers without payload, credit fields filled when sent
  std::deque<uint32_t> credit_due_;  // connections that owe the guest a CREDIT_UPDATE
  std::deque<uint32_t> ready_;       // connections whose host socket has data for the guest
};

}  // namespace edgevisor::vsock
