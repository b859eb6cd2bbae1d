// libFuzzer target: the vsock device's guest side. The input is a run of TX packets as a guest
// writes them (each: a 2-byte length, then that many bytes of header and payload), handed to
// the muxer as the device does (ParseHeader, CheckPayload, then OnGuestPacket or
// OnBadGuestPacket), with the guest's RX queue drained in between at sizes the input picks.
// Host port 1 has a listener, so guest connections get established and their credit, shutdown
// and reset paths run. Nothing may crash, leak, or queue without bound.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "src/devices/vsock/muxer.h"
#include "src/devices/vsock/packet.h"

namespace {

using namespace edgevisor::vsock;  // NOLINT(build/namespaces)

struct Host {
  Host() {
    char tmpl[] = "/tmp/vsock-fuzz.XXXXXX";
    dir = mkdtemp(tmpl);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::string path = dir + "/v_1";
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        listen(listener, 4096) != 0) {
      abort();
    }
  }
  // Closes the connections the guest made (their backlog would fill up over many inputs).
  void Drain() const {
    for (int c; (c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) close(c);
  }
  std::string dir;
  int listener;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Host host;
  VsockCounters counters;
  auto mux = Muxer::Create(3, host.dir + "/v", &counters);
  if (!mux.ok()) abort();
  size_t off = 0;
  while (off + 3 <= size) {
    const size_t len = std::min<size_t>(data[off] | (data[off + 1] << 8), size - off - 3);
    const uint32_t rx_room = data[off + 2] * 64u;
    off += 3;
    const absl::Span<const uint8_t> bytes(data + off, len);
    off += len;
    if (std::optional<Header> hdr = ParseHeader(bytes)) {
      if (absl::Status s = CheckPayload(*hdr, len - kHeaderSize); s.ok()) {
        (*mux)->OnGuestPacket(*hdr, bytes.subspan(kHeaderSize, hdr->len));
      } else {
        (*mux)->OnBadGuestPacket(*hdr, s);
      }
    }
    (*mux)->ProcessHostEvents();
    while (std::optional<Packet> p = (*mux)->NextRx(rx_room)) {
      if (p->data.size() > rx_room || p->hdr.len != p->data.size()) abort();
      if (p->hdr.dst_cid != 3 || p->hdr.src_cid != kHostCid) abort();
    }
    if ((*mux)->connections() > Muxer::kMaxConnections) abort();
  }
  mux->reset();
  host.Drain();
  return 0;
}
