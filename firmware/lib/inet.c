// Ethernet / IPv4 helpers. See include/inet.h.
#include "inet.h"

#include "rt.h"

uint64_t inet_csum_add(uint64_t sum, const void* data, size_t len) {
  const uint8_t* p = data;
  // Four 32-bit words per iteration: the guest may run at a few million instructions per
  // second, so keep the loop overhead per byte low. 64-bit accumulator: no carries to track.
  for (; len >= 16; len -= 16, p += 16) {
    sum += (uint64_t)inet_load32(p) + inet_load32(p + 4) + inet_load32(p + 8) + inet_load32(p + 12);
  }
  for (; len >= 4; len -= 4, p += 4) sum += inet_load32(p);
  if (len >= 2) {
    sum += inet_load16(p);
    p += 2;
    len -= 2;
  }
  if (len != 0) sum += *p;  // high-order (first) byte of a zero-padded network word
  return sum;
}

uint16_t inet_csum_fold(uint64_t sum) {
  sum = (sum & 0xffffffffull) + (sum >> 32);
  sum = (sum & 0xffffffffull) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

uint64_t inet_pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len) {
  uint8_t ph[12];
  inet_store32(ph, src);
  inet_store32(ph + 4, dst);
  ph[8] = 0;
  ph[9] = proto;
  inet_put16(ph + 10, len);
  return inet_csum_add(0, ph, sizeof(ph));
}

uint16_t inet_csum_update16(uint16_t check, uint16_t old_word, uint16_t new_word) {
  // RFC 1624 §3, eqn. 3: HC' = ~(~HC + ~m + m').
  const uint64_t sum = (uint64_t)(uint16_t)~check + (uint16_t)~old_word + new_word;
  return (uint16_t)~inet_csum_fold(sum);
}

bool inet_parse_ipv4(const char* s, size_t len, uint32_t* out) {
  uint32_t ip = 0;
  size_t p = 0;
  for (int octet = 0; octet < 4; octet++) {
    if (octet > 0) {
      if (p >= len || s[p] != '.') return false;
      p++;
    }
    unsigned v = 0;
    size_t digits = 0;
    while (p < len && s[p] >= '0' && s[p] <= '9' && digits < 3) {
      v = v * 10 + (unsigned)(s[p] - '0');
      p++;
      digits++;
    }
    if (digits == 0 || v > 255) return false;
    ip |= (uint32_t)v << (8 * octet);
  }
  if (p != len) return false;
  *out = ip;
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool inet_parse_mac(const char* s, size_t len, uint8_t mac[ETH_ALEN]) {
  if (len != 17) return false;
  uint8_t m[ETH_ALEN];
  for (int i = 0; i < ETH_ALEN; i++) {
    const char* q = s + 3 * i;
    const int hi = hexval(q[0]), lo = hexval(q[1]);
    if (hi < 0 || lo < 0) return false;
    if (i < ETH_ALEN - 1 && q[2] != ':' && q[2] != '-') return false;
    m[i] = (uint8_t)(hi << 4 | lo);
  }
  memcpy(mac, m, ETH_ALEN);
  return true;
}

char* inet_ipv4_str(uint32_t ip, char* buf) {
  rt_snprintf(buf, 16, "%u.%u.%u.%u", ip & 0xff, (ip >> 8) & 0xff, (ip >> 16) & 0xff, ip >> 24);
  return buf;
}

char* inet_mac_str(const uint8_t* mac, char* buf) {
  rt_snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
              mac[5]);
  return buf;
}
