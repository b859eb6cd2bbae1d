// ServiceNotifier: the sd_notify protocol against a socket standing in for systemd's.
#include "src/base/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edgevisor {
namespace {

using ::testing::HasSubstr;

// A datagram socket bound at PATH ('@': abstract), as systemd's notification socket is.
class Manager {
 public:
  explicit Manager(const std::string& path) : fd_(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    if (path[0] == '@') {
      addr.sun_path[0] = '\0';
      --len;
    } else {
      unlink(path.c_str());
    }
    bound_ = bind(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0;
  }
  bool bound() const { return bound_; }
  std::string Receive() const {
    char buf[512];
    const ssize_t n = recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
    return n < 0 ? "<nothing>" : std::string(buf, static_cast<size_t>(n));
  }

 private:
  UniqueFd fd_;
  bool bound_ = false;
};

std::string TempSocket() {
  return (getenv("TMPDIR") ? std::string(getenv("TMPDIR")) : "/tmp") + "/ev-notify-" +
         std::to_string(getpid()) + ".sock";
}

class ServiceNotifyTest : public ::testing::Test {
 protected:
  void TearDown() override {
    unsetenv(kNotifySocketEnv);
    unsetenv(kNotifyFdEnv);
  }
};

TEST_F(ServiceNotifyTest, NoManagerNotifiesNoOne) {
  auto n = ServiceNotifier::FromEnvironment();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_FALSE(n->active());
  n->Notify("READY=1");  // nothing to send it to, and no error
}

TEST_F(ServiceNotifyTest, NotifySocketPathGetsTheState) {
  const std::string path = TempSocket();
  Manager m(path);
  ASSERT_TRUE(m.bound());
  setenv(kNotifySocketEnv, path.c_str(), 1);
  auto n = ServiceNotifier::FromEnvironment();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(n->active());
  EXPECT_EQ(getenv(kNotifySocketEnv), nullptr) << "children must not inherit it";
  n->Notify("READY=1\nSTATUS=guest booted in 12 ms");
  EXPECT_EQ(m.Receive(), "READY=1\nSTATUS=guest booted in 12 ms");
  unlink(path.c_str());
}

TEST_F(ServiceNotifyTest, AbstractSocketName) {
  const std::string name = "@ev-notify-test-" + std::to_string(getpid());
  Manager m(name);
  ASSERT_TRUE(m.bound());
  setenv(kNotifySocketEnv, name.c_str(), 1);
  auto n = ServiceNotifier::FromEnvironment();
  ASSERT_TRUE(n.ok()) << n.status();
  n->Notify("READY=1");
  EXPECT_EQ(m.Receive(), "READY=1");
}

TEST_F(ServiceNotifyTest, DescriptorFromTheJailerWinsAndIsCloseOnExec) {
  const std::string path = TempSocket();
  Manager m(path);
  ASSERT_TRUE(m.bound());
  auto fd = ServiceNotifier::Connect(path);
  ASSERT_TRUE(fd.ok()) << fd.status();
  const int raw = fd->Release();
  setenv(kNotifyFdEnv, std::to_string(raw).c_str(), 1);
  setenv(kNotifySocketEnv, "/nonexistent/socket", 1);  // not used: the descriptor comes first
  auto n = ServiceNotifier::FromEnvironment();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->fd(), raw);
  EXPECT_EQ(getenv(kNotifyFdEnv), nullptr);
  EXPECT_EQ(getenv(kNotifySocketEnv), nullptr);
  n->Notify("READY=1");
  EXPECT_EQ(m.Receive(), "READY=1");
  unlink(path.c_str());
}

TEST_F(ServiceNotifyTest, BadValuesNameTheVariable) {
  for (const char* bad : {"x", "-1", "1", "999999"}) {
    setenv(kNotifyFdEnv, bad, 1);
    auto n = ServiceNotifier::FromEnvironment();
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_THAT(std::string(n.status().message()), HasSubstr(kNotifyFdEnv)) << bad;
  }
  for (const char* bad : {"relative.sock", "", "/nonexistent/dir/notify.sock"}) {
    setenv(kNotifySocketEnv, bad, 1);
    auto n = ServiceNotifier::FromEnvironment();
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_THAT(std::string(n.status().message()), HasSubstr(kNotifySocketEnv)) << bad;
  }
  // A regular file's descriptor is not a socket.
  setenv(kNotifyFdEnv, "0", 1);
  EXPECT_FALSE(ServiceNotifier::FromEnvironment().ok());
}

TEST_F(ServiceNotifyTest, AManagerThatWentAwayIsNotFatal) {
  const std::string path = TempSocket();
  auto n = [&] {
    Manager m(path);
    setenv(kNotifySocketEnv, path.c_str(), 1);
    return ServiceNotifier::FromEnvironment();
  }();
  ASSERT_TRUE(n.ok()) << n.status();
  n->Notify("READY=1");  // the socket is closed: logged, and the caller goes on
  unlink(path.c_str());
}

}  // namespace
}  // namespace edgevisor
