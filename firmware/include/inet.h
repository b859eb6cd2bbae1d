// Minimal Ethernet / ARP / IPv4 / ICMP / UDP helpers for the network payloads.
//
// Conventions: an IPv4 address is a uint32_t holding the four octets in packet (memory) order,
// i.e. exactly what a 4-byte load from the header gives; compare addresses with ==, build them
// with INET_IPV4(a, b, c, d). Multi-byte header fields are big-endian: read and write them with
// inet_get16 / inet_put16 (byte accesses, so no alignment assumptions about the frame).
//
// Internet checksums (RFC 1071) are computed in host (little-endian) order over 32-bit words and
// folded to 16 bits; a checksum computed this way is stored with a host-order 16-bit store and
// then reads correctly in network order (the ones' complement sum is byte-order independent,
// RFC 1071 §2(B)). Use inet_store16 / inet_load16 for checksum fields.
#ifndef EDGEVISOR_FW_INET_H
#define EDGEVISOR_FW_INET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// ETH_ALEN, ETH_HLEN, ETH_P_ARP, ETH_P_IPV6: the kernel's uapi header, as for virtio_net.h.
#include <linux/if_ether.h>

#define ETH_P_IPV4 ETH_P_IP

#define ARP_LEN 28  // Ethernet/IPv4 ARP payload (RFC 826)
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY 2

#define IPV4_HLEN 20  // without options
#define IPPROTO_ICMP 1
#define IPPROTO_UDP 17
#define IPV4_DF 0x4000
#define IPV4_MF 0x2000
#define IPV4_FRAG_OFFSET_MASK 0x1fff

#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8
#define ICMP_HLEN 8
#define UDP_HLEN 8

// Octets a.b.c.d in packet order (little-endian host).
#define INET_IPV4(a, b, c, d) \
  ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

// Unaligned, alias-safe access to frame bytes.
typedef uint16_t inet_u16_una __attribute__((aligned(1), may_alias));
typedef uint32_t inet_u32_una __attribute__((aligned(1), may_alias));

static inline uint16_t inet_get16(const uint8_t* p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline void inet_put16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
// Raw (memory-order) 16/32-bit accesses: addresses, checksum fields.
static inline uint16_t inet_load16(const uint8_t* p) { return *(const inet_u16_una*)p; }
static inline void inet_store16(uint8_t* p, uint16_t v) { *(inet_u16_una*)p = v; }
static inline uint32_t inet_load32(const uint8_t* p) { return *(const inet_u32_una*)p; }
static inline void inet_store32(uint8_t* p, uint32_t v) { *(inet_u32_una*)p = v; }

static inline void inet_mac_copy(uint8_t* dst, const uint8_t* src) {
  inet_store32(dst, inet_load32(src));
  inet_store16(dst + 4, inet_load16(src + 4));
}
static inline bool inet_mac_eq(const uint8_t* a, const uint8_t* b) {
  return inet_load32(a) == inet_load32(b) && inet_load16(a + 4) == inet_load16(b + 4);
}
// Group (multicast or broadcast) bit of a destination MAC.
static inline bool inet_mac_is_group(const uint8_t* m) { return (m[0] & 1) != 0; }

// Adds data[0..len) to a running host-order ones'-complement sum (32-bit words into a 64-bit
// accumulator: ~6 instructions per 4 bytes). `len` may be odd; if it is, the last byte is
// treated as the high-order (network) byte of a zero-padded word, so only the final chunk of a
// checksummed region may have odd length.
uint64_t inet_csum_add(uint64_t sum, const void* data, size_t len);
// Folds a running sum to 16 bits (host order, not complemented).
uint16_t inet_csum_fold(uint64_t sum);
// Partial sum of the UDP/TCP pseudo-header (RFC 768): addresses, protocol, length.
uint64_t inet_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);
// ~fold(sum): the value to store in a checksum field (host order, store with inet_store16).
static inline uint16_t inet_csum_finish(uint64_t sum) { return (uint16_t)~inet_csum_fold(sum); }

// RFC 1624 eqn. 3 incremental update of a stored checksum field when one 16-bit word of the
// covered data changes from old_word to new_word (both as loaded with inet_load16).
uint16_t inet_csum_update16(uint16_t check, uint16_t old_word, uint16_t new_word);

// "a.b.c.d" -> address; false on syntax errors.
bool inet_parse_ipv4(const char* s, size_t len, uint32_t* out);
// "xx:xx:xx:xx:xx:xx" (':' or '-') -> mac; false on syntax errors.
bool inet_parse_mac(const char* s, size_t len, uint8_t mac[ETH_ALEN]);
// Formatting into caller buffers (at least 16 / 18 bytes); returns buf.
char* inet_ipv4_str(uint32_t ip, char* buf);
char* inet_mac_str(const uint8_t* mac, char* buf);

#endif  // EDGEVISOR_FW_INET_H
