#include "src/devices/vsock/packet.h"

#include <cstring>

#include "absl/strings/str_format.h"

namespace edgevisor::vsock {
namespace {

template <typename T>
T Load(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(p[i]) << (8 * i));
  return v;
}

template <typename T>
void Store(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

#define EV_VSOCK_FIELD(f) offsetof(virtio_vsock_hdr, f)

}  // namespace

std::optional<Header> ParseHeader(absl::Span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) return std::nullopt;
  const uint8_t* p = bytes.data();
  return Header{
      .src_cid = Load<uint64_t>(p + EV_VSOCK_FIELD(src_cid)),
      .dst_cid = Load<uint64_t>(p + EV_VSOCK_FIELD(dst_cid)),
      .src_port = Load<uint32_t>(p + EV_VSOCK_FIELD(src_port)),
      .dst_port = Load<uint32_t>(p + EV_VSOCK_FIELD(dst_port)),
      .len = Load<uint32_t>(p + EV_VSOCK_FIELD(len)),
      .type = Load<uint16_t>(p + EV_VSOCK_FIELD(type)),
      .op = Load<uint16_t>(p + EV_VSOCK_FIELD(op)),
      .flags = Load<uint32_t>(p + EV_VSOCK_FIELD(flags)),
      .buf_alloc = Load<uint32_t>(p + EV_VSOCK_FIELD(buf_alloc)),
      .fwd_cnt = Load<uint32_t>(p + EV_VSOCK_FIELD(fwd_cnt)),
  };
}

void EncodeHeader(const Header& h, absl::Span<uint8_t> out) {
  uint8_t* p = out.data();
  std::memset(p, 0, kHeaderSize);
  Store(p + EV_VSOCK_FIELD(src_cid), h.src_cid);
  Store(p + EV_VSOCK_FIELD(dst_cid), h.dst_cid);
  Store(p + EV_VSOCK_FIELD(src_port), h.src_port);
  Store(p + EV_VSOCK_FIELD(dst_port), h.dst_port);
  Store(p + EV_VSOCK_FIELD(len), h.len);
  Store(p + EV_VSOCK_FIELD(type), h.type);
  Store(p + EV_VSOCK_FIELD(op), h.op);
  Store(p + EV_VSOCK_FIELD(flags), h.flags);
  Store(p + EV_VSOCK_FIELD(buf_alloc), h.buf_alloc);
  Store(p + EV_VSOCK_FIELD(fwd_cnt), h.fwd_cnt);
}

#undef EV_VSOCK_FIELD

absl::Status CheckPayload(const Header& hdr, uint64_t available) {
  if (hdr.len > kMaxPayload) {
    return absl::InvalidArgumentError(
        absl::StrFormat("payload length %u is over the %u-byte limit", hdr.len, kMaxPayload));
  }
  if (hdr.len > available) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "payload length %u, but the chain holds %u bytes after the header", hdr.len, available));
  }
  return absl::OkStatus();
}

std::string Describe(const Header& h) {
  static constexpr const char* kOps[] = {"INVALID",  "REQUEST", "RESPONSE",      "RST",
                                         "SHUTDOWN", "RW",      "CREDIT_UPDATE", "CREDIT_REQUEST"};
  const std::string op = h.op < 8 ? kOps[h.op] : absl::StrFormat("op %u", h.op);
  return absl::StrFormat("%s %u:%u -> %u:%u len %u", op, h.src_cid, h.src_port, h.dst_cid,
                         h.dst_port, h.len);
}

}  // namespace edgevisor::vsock
