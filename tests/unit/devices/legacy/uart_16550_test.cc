#include "src/devices/legacy/uart_16550.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace edgevisor {
namespace {

class UartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pipe2(fds_, O_NONBLOCK), 0);
    uart_ = std::make_unique<Uart16550>(fds_[1], [this](bool l) { irq_.push_back(l); });
  }
  void TearDown() override {
    close(fds_[0]);
    close(fds_[1]);
  }
  uint8_t In(uint64_t reg) {
    uint8_t v = 0;
    uart_->Read(reg, absl::MakeSpan(&v, 1));
    return v;
  }
  void Out(uint64_t reg, uint8_t v) { uart_->Write(reg, absl::MakeConstSpan(&v, 1)); }
  std::string Drain() {
    char buf[256];
    ssize_t n = read(fds_[0], buf, sizeof(buf));
    return n > 0 ? std::string(buf, n) : "";
  }
  int fds_[2];
  std::vector<bool> irq_;
  std::unique_ptr<Uart16550> uart_;
};

TEST_F(UartTest, TransmitsToFd) {
  for (char c : std::string("hi\n")) Out(0, c);
  EXPECT_EQ(Drain(), "hi\n");
  EXPECT_EQ(In(5) & 0x60, 0x60) << "THRE and TEMT always set";
}

TEST_F(UartTest, DivisorLatchDoesNotTransmit) {
  Out(3, 0x80);
  Out(0, 0x01);
  Out(1, 0x00);
  EXPECT_EQ(In(0), 0x01);
  Out(3, 0x03);
  Out(0, 'x');
  EXPECT_EQ(Drain(), "x");
}

TEST_F(UartTest, ReceiveRaisesAndClearsIrq) {
  Out(1, 0x01);  // RX available interrupt
  EXPECT_TRUE(irq_.empty());
  const uint8_t in[] = {'a', 'b'};
  EXPECT_EQ(uart_->EnqueueInput(in), 2u);
  ASSERT_EQ(irq_.size(), 1u);
  EXPECT_TRUE(irq_.back());
  EXPECT_EQ(In(5) & 1, 1);
  EXPECT_EQ(In(2) & 0x0f, 0x04);
  EXPECT_EQ(In(0), 'a');
  EXPECT_EQ(In(0), 'b');
  EXPECT_FALSE(irq_.back());
  EXPECT_EQ(In(5) & 1, 0);
  EXPECT_EQ(In(2) & 0x0f, 0x01);
}

TEST_F(UartTest, ThreInterruptClearedByIirRead) {
  Out(1, 0x02);
  ASSERT_FALSE(irq_.empty());
  EXPECT_TRUE(irq_.back());
  EXPECT_EQ(In(2) & 0x0f, 0x02);
  EXPECT_FALSE(irq_.back());
  Out(0, 'z');
  EXPECT_TRUE(irq_.back());
}

TEST_F(UartTest, FifoIsBounded) {
  std::vector<uint8_t> lots(1000, 'q');
  EXPECT_EQ(uart_->EnqueueInput(lots), Uart16550::kRxFifoSize);
  EXPECT_EQ(uart_->InputSpace(), 0u);
  In(0);
  EXPECT_EQ(uart_->InputSpace(), 1u);
}

TEST_F(UartTest, OnRoomFiresWhenTheGuestDrainsAFullFifo) {
  int calls = 0;
  uart_->SetOnRoom([&calls] { ++calls; });
  std::vector<uint8_t> two(2, 'a');
  uart_->EnqueueInput(two);
  In(0);
  EXPECT_EQ(calls, 0) << "the FIFO was not full: nobody is waiting for room";
  std::vector<uint8_t> lots(1000, 'q');
  uart_->EnqueueInput(lots);
  In(0);
  EXPECT_EQ(calls, 1);
  In(0);
  EXPECT_EQ(calls, 1) << "only the first byte taken from a full FIFO makes room";
  uart_->EnqueueInput(lots);
  Out(2, 0x03);  // FCR: enable and clear the receive FIFO
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(uart_->InputSpace(), Uart16550::kRxFifoSize);
}

TEST_F(UartTest, LoopbackEchoesIntoReceiver) {
  Out(4, 0x10);
  Out(0, 'L');
  EXPECT_EQ(In(0), 'L');
  EXPECT_EQ(Drain().size(), 0u) << "loopback must not reach the host";
}

TEST_F(UartTest, ScratchAndOutOfRangeRegisters) {
  Out(7, 0xa5);
  EXPECT_EQ(In(7), 0xa5);
  EXPECT_EQ(In(8), 0xff);
  Out(9, 1);  // ignored
}

}  // namespace
}  // namespace edgevisor
