// rig-check: the nested rig's network checks, one static program for the guest and for the
// machine edgevisor runs in. vsock: both ends, the guest's (AF_VSOCK, through Linux's
// virtio-vsock driver) and the host's (the device's Unix sockets, Firecracker's protocol). UDP:
// the client of the arm64 rig's net_responder payload (busybox's nc has no UDP).
//
//   rig-check listen PORT COUNT          guest: echo COUNT connections on vsock PORT, in turn
//   rig-check connect CID PORT BYTES     guest: send BYTES of a pattern to CID:PORT, read the
//                                          echo back, compare
//   rig-check uds-listen PATH            host: echo every connection on the Unix socket PATH
//                                          (what the guest reaches as host port P: PATH is
//                                          <uds_path>_P)
//   rig-check uds-connect PATH PORT BYTES  host: "CONNECT PORT\n" on the device's socket
//                                          PATH, expect "OK <n>\n", then as connect
//
//   rig-check udp-echo IP PORT BYTES COUNT  COUNT datagrams of BYTES each to IP:PORT, each
//                                          awaited (1 s) and compared; prints "UDP_CHECK
//                                          sent=N received=N mismatches=M lost=L"
//   rig-check udp-send IP PORT TEXT        one datagram (net_responder's "quit")
//
// connect and uds-connect print "VSOCK_CHECK <what> sent=N received=N mismatches=M" and exit 0
// only when everything came back as sent; any failure is one line saying what went wrong.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
// After sys/socket.h: it uses struct sockaddr.
#include <linux/vm_sockets.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + 13 + (i >> 10)); }

static int fail(const char* what) {
  printf("VSOCK_CHECK_FAIL %s: %s\n", what, strerror(errno));
  return 1;
}

// Echoes FD until EOF.
static void echo(int fd) {
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) {
    for (ssize_t done = 0, w; done < n; done += w) {
      w = send(fd, buf + done, (size_t)(n - done), MSG_NOSIGNAL);
      if (w <= 0) return;
    }
  }
}

// Sends BYTES of the pattern on FD while reading them back; compares. Both at once: an echo
// peer stops reading when its own sends back up.
static int exchange(int fd, size_t bytes, const char* what) {
  static char buf[65536];
  size_t sent = 0, got = 0, bad = 0;
  while (got < bytes) {
    struct pollfd p = {fd, (short)(POLLIN | (sent < bytes ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 30000) != 1) {
      printf("VSOCK_CHECK_FAIL %s: stalled at sent=%zu received=%zu\n", what, sent, got);
      return 1;
    }
    if ((p.revents & POLLOUT) && sent < bytes) {
      size_t n = bytes - sent < sizeof(buf) ? bytes - sent : sizeof(buf);
      for (size_t i = 0; i < n; i++) buf[i] = (char)pattern(sent + i);
      ssize_t w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) return fail("send");
      if (w > 0) sent += (size_t)w;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (r < 0 && errno != EAGAIN) return fail("recv");
      if (r == 0) break;
      for (ssize_t i = 0; i < r; i++) bad += (unsigned char)buf[i] != pattern(got + (size_t)i);
      if (r > 0) got += (size_t)r;
    }
  }
  printf("VSOCK_CHECK %s sent=%zu received=%zu mismatches=%zu\n", what, sent, got, bad);
  return sent == bytes && got == bytes && bad == 0 ? 0 : 1;
}

static int unix_socket(const char* path, struct sockaddr_un* a) {
  memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(a->sun_path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(a->sun_path, path);
  return socket(AF_UNIX, SOCK_STREAM, 0);
}

static int listen_vsock(unsigned port, int count) {
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY};
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0 || bind(s, (struct sockaddr*)&a, sizeof(a)) != 0 || listen(s, 8) != 0)
    return fail("vsock listen");
  for (int i = 0; i < count; i++) {
    int c = accept(s, NULL, NULL);
    if (c < 0) return fail("vsock accept");
    echo(c);
    close(c);
  }
  return 0;
}

static int connect_vsock(unsigned cid, unsigned port, size_t bytes) {
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = port, .svm_cid = cid};
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (s < 0 || connect(s, (struct sockaddr*)&a, sizeof(a)) != 0) return fail("vsock connect");
  return exchange(s, bytes, "guest->host");
}

static int listen_uds(const char* path) {
  struct sockaddr_un a;
  int s = unix_socket(path, &a);
  if (s < 0 || bind(s, (struct sockaddr*)&a, sizeof(a)) != 0 || listen(s, 8) != 0)
    return fail("unix listen");
  signal(SIGCHLD, SIG_IGN);  // no zombies
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    if (fork() == 0) {
      echo(c);
      _exit(0);
    }
    close(c);
  }
}

static int connect_uds(const char* path, unsigned port, size_t bytes) {
  struct sockaddr_un a;
  int s = unix_socket(path, &a);
  if (s < 0 || connect(s, (struct sockaddr*)&a, sizeof(a)) != 0) return fail("unix connect");
  char line[64];
  int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
  if (write(s, line, (size_t)n) != n) return fail("CONNECT");
  size_t len = 0;
  while (len + 1 < sizeof(line) && (len == 0 || line[len - 1] != '\n')) {
    if (read(s, line + len, 1) != 1) break;
    len++;
  }
  line[len] = 0;
  if (strncmp(line, "OK ", 3) != 0) {
    printf("VSOCK_CHECK_FAIL host->guest: the device answered \"%s\", not OK\n", line);
    return 1;
  }
  return exchange(s, bytes, "host->guest");
}

static int udp_socket(const char* ip, unsigned port, struct sockaddr_in* to) {
  memset(to, 0, sizeof(*to));
  to->sin_family = AF_INET;
  to->sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, ip, &to->sin_addr) != 1) {
    errno = EINVAL;
    return -1;
  }
  return socket(AF_INET, SOCK_DGRAM, 0);
}

static int udp_echo(const char* ip, unsigned port, size_t bytes, int count) {
  struct sockaddr_in to;
  int s = udp_socket(ip, port, &to);
  if (s < 0 || bytes > 8192) return fail("udp socket");
  static char out[8192], in[8192];
  size_t bad = 0;
  int got = 0, lost = 0;
  for (int n = 0; n < count; n++) {
    for (size_t i = 0; i < bytes; i++) out[i] = (char)pattern(i + (size_t)n);
    if (sendto(s, out, bytes, 0, (struct sockaddr*)&to, sizeof(to)) != (ssize_t)bytes)
      return fail("udp send");
    struct pollfd p = {s, POLLIN, 0};
    ssize_t r = poll(&p, 1, 1000) == 1 ? recv(s, in, sizeof(in), 0) : -1;
    if (r < 0) {
      lost++;
      continue;
    }
    got++;
    bad += (size_t)r != bytes;
    for (ssize_t i = 0; i < r && (size_t)r == bytes; i++) bad += in[i] != out[i];
  }
  printf("UDP_CHECK sent=%d received=%d mismatches=%zu lost=%d\n", count, got, bad, lost);
  return got == count && bad == 0 ? 0 : 1;
}

static int udp_send(const char* ip, unsigned port, const char* text) {
  struct sockaddr_in to;
  int s = udp_socket(ip, port, &to);
  if (s < 0 || sendto(s, text, strlen(text), 0, (struct sockaddr*)&to, sizeof(to)) < 0)
    return fail("udp send");
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "listen") == 0)
    return listen_vsock(atoi(argv[2]), atoi(argv[3]));
  if (argc == 5 && strcmp(argv[1], "connect") == 0)
    return connect_vsock(atoi(argv[2]), atoi(argv[3]), strtoul(argv[4], NULL, 0));
  if (argc == 3 && strcmp(argv[1], "uds-listen") == 0) return listen_uds(argv[2]);
  if (argc == 5 && strcmp(argv[1], "uds-connect") == 0)
    return connect_uds(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 0));
  if (argc == 6 && strcmp(argv[1], "udp-echo") == 0)
    return udp_echo(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 0), atoi(argv[5]));
  if (argc == 5 && strcmp(argv[1], "udp-send") == 0)
    return udp_send(argv[2], atoi(argv[3]), argv[4]);
  fprintf(stderr, "usage: see the comment at the top of image/guest/rig-check.c\n");
  return 2;
}
