// One vsock stream between a guest port and a host Unix socket, with the credit accounting of
// virtio 1.2 §5.10.6.3 in both directions. The muxer owns every connection and does the I/O;
// what is here is the bookkeeping it decides with, kept apart so that unit tests reach it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "src/base/fd.h"

namespace edgevisor::vsock {

// Bytes of guest data the device holds for one connection before the host socket takes them:
// the buf_alloc it tells the guest. A guest that sends more than that is overrunning its credit.
inline constexpr uint32_t kConnBufAlloc = 256 * 1024;

class Connection {
 public:
  enum class State {
    kAwaitingLine,  // a host process connected to uds_path; its "CONNECT <port>\n" is awaited
    kConnecting,    // REQUEST sent to the guest; its RESPONSE is awaited
    kEstablished,
  };

  Connection(uint32_t id, UniqueFd fd, State state) : id_(id), fd_(std::move(fd)), state_(state) {}

  uint32_t id() const { return id_; }
  int fd() const { return fd_.get(); }
  State state() const { return state_; }
  void set_state(State s) { state_ = s; }
  uint32_t local_port() const { return local_port_; }  // the host side's port
  uint32_t peer_port() const { return peer_port_; }    // the guest's port
  void set_ports(uint32_t local, uint32_t peer) {
    local_port_ = local;
    peer_port_ = peer;
  }

  // ---- guest -> host ---------------------------------------------------------------------
  // Whether LEN more guest bytes fit in what the device advertised (buf_alloc minus what it
  // holds unforwarded); false means the guest overran its credit.
  bool FitsCredit(uint32_t len) const {
    return recv_cnt_ - fwd_cnt_ + uint64_t{len} <= kConnBufAlloc;
  }
  // LEN bytes arrived from the guest (before any of them is forwarded).
  void Received(uint32_t len) { recv_cnt_ += len; }
  // LEN bytes went to the host socket.
  void Forwarded(uint32_t len) { fwd_cnt_ += len; }
  // Guest bytes waiting for the host socket to take them.
  std::vector<uint8_t>& pending() { return pending_; }
  size_t pending_offset() const { return pending_off_; }
  size_t pending_bytes() const { return pending_.size() - pending_off_; }
  // Drops the first N pending bytes (written to the host).
  void Consume(size_t n) {
    pending_off_ += n;
    if (pending_off_ == pending_.size()) {
      pending_.clear();
      pending_off_ = 0;
    } else if (pending_off_ >= kConnBufAlloc / 4) {
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(pending_off_));
      pending_off_ = 0;
    }
  }
  // Whether the guest should hear of freed space now: its view of our free space (buf_alloc
  // minus what it sent since the fwd_cnt it last saw) fell under half, and we freed some since.
  bool CreditUpdateDue() const {
    return fwd_cnt_ != fwd_cnt_told_ &&
           kConnBufAlloc - (recv_cnt_ - fwd_cnt_told_) < kConnBufAlloc / 2;
  }
  // The fwd_cnt to put in a packet to the guest, noted as told.
  uint32_t TellFwdCnt() {
    fwd_cnt_told_ = fwd_cnt_;
    return fwd_cnt_;
  }

  // ---- host -> guest ---------------------------------------------------------------------
  // The guest's latest buf_alloc and fwd_cnt (every packet it sends carries them).
  void PeerCredit(uint32_t buf_alloc, uint32_t fwd_cnt) {
    peer_buf_alloc_ = buf_alloc;
    peer_fwd_cnt_ = fwd_cnt;
  }
  // How many more bytes the guest can take now. A guest whose fwd_cnt runs ahead of what it was
  // sent (hostile) gets nothing until it is sane again.
  uint32_t PeerFree() const {
    const uint32_t unconsumed = sent_cnt_ - peer_fwd_cnt_;
    if (unconsumed > peer_buf_alloc_) return 0;
    return peer_buf_alloc_ - unconsumed;
  }
  void Sent(uint32_t len) { sent_cnt_ += len; }

  // ---- shutdown --------------------------------------------------------------------------
  uint32_t guest_shutdown() const { return guest_shutdown_; }  // kShutdown* flags received
  void GuestShutdown(uint32_t flags) { guest_shutdown_ |= flags; }
  bool host_eof() const { return host_eof_; }
  void set_host_eof() { host_eof_ = true; }
  bool host_write_closed() const { return host_write_closed_; }
  void set_host_write_closed() { host_write_closed_ = true; }

  // ---- the muxer's bookkeeping -----------------------------------------------------------
  std::string& line() { return line_; }  // kAwaitingLine: what came of the line so far
  absl::Time deadline() const { return deadline_; }
  void set_deadline(absl::Time t) { deadline_ = t; }
  bool in_ready = false;  // queued for reading (its socket had data)
  bool credit_update_queued = false;
  uint32_t interest = 0;  // what the muxer's event set waits for on fd (EventSet bits)
  bool watched = false;   // fd is in the muxer's event set

 private:
  uint32_t id_;
  UniqueFd fd_;
  State state_;
  uint32_t local_port_ = 0, peer_port_ = 0;
  // Counters wrap at 2^32, as the header's do; only differences are used.
  uint32_t recv_cnt_ = 0, fwd_cnt_ = 0, fwd_cnt_told_ = 0;
  uint32_t sent_cnt_ = 0, peer_buf_alloc_ = 0, peer_fwd_cnt_ = 0;
  std::vector<uint8_t> pending_;
  size_t pending_off_ = 0;
  uint32_t guest_shutdown_ = 0;
  bool host_eof_ = false;
  bool host_write_closed_ = false;
  std::string line_;
  absl::Time deadline_ = absl::InfiniteFuture();
};

}  // namespace edgevisor::vsock
