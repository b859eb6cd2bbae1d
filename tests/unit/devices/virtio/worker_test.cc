// The device worker skeleton: events arrive with the ids they were registered under, a batch
// ends with AfterEvents, an fd can leave the set, and a stop ends the loop with OnStop on the
// worker's own thread.
#include "src/devices/virtio/worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/unit/devices/virtio/virtio_test_util.h"

namespace edgevisor::virtio {
namespace {

enum class Kind : uint32_t { kA, kB };

class RecordingWorker : public Worker {
 public:
  struct Seen {
    uint32_t kind, index;
  };
  // STOP_STATE outlives the worker (WorkerThread::Stop destroys it): OnStop sets it to 1 on the
  // worker's own thread, 2 elsewhere.
  RecordingWorker(const EventFd& a, const EventFd& b, std::atomic<int>* stop_state = nullptr)
      : a_(a), b_(b), stop_state_(stop_state) {}
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::atomic<int> batches{0};
  std::atomic<bool> started{false};
  std::thread::id thread;

 protected:
  void OnStart() override {
    thread = std::this_thread::get_id();
    started = true;
  }
  void OnEvent(EventId id) override {
    (id.Is(Kind::kA) ? a_ : b_).Drain();
    std::lock_guard lock(mu_);
    seen_.push_back({id.kind, id.index});
  }
  void AfterEvents() override { ++batches; }
  void OnStop() override {
    if (stop_state_) *stop_state_ = std::this_thread::get_id() == thread ? 1 : 2;
  }

 private:
  const EventFd& a_;
  const EventFd& b_;
  std::atomic<int>* stop_state_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

bool Eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(WorkerTest, DispatchesTypedEventsUntilStopped) {
  if (testing::UnderQemuUser()) GTEST_SKIP() << "threads hang under qemu-user";
  auto a = EventFd::Create("a");
  auto b = EventFd::Create("b");
  ASSERT_TRUE(a.ok() && b.ok());
  auto w = std::make_unique<RecordingWorker>(*a, *b);
  RecordingWorker* rec = w.get();
  ASSERT_TRUE(w->Watch(a->fd(), EventId::Of(Kind::kA, 7)).ok());
  ASSERT_TRUE(w->Watch(b->fd(), EventId::Of(Kind::kB, 3)).ok());
  EXPECT_FALSE(w->Watch(a->fd(), EventId::Of(Kind::kA, 8)).ok());  // already watched

  WorkerThread t;
  ASSERT_TRUE(t.Start("worker-test", std::move(w)).ok());
  EXPECT_TRUE(t.running());
  a->Signal();
  ASSERT_TRUE(Eventually([&] { return rec->seen().size() == 1; }));
  b->Signal();
  ASSERT_TRUE(Eventually([&] { return rec->seen().size() == 2; }));
  const auto seen = rec->seen();
  EXPECT_EQ(seen[0].kind, 0u);
  EXPECT_EQ(seen[0].index, 7u);
  EXPECT_EQ(seen[1].kind, 1u);
  EXPECT_EQ(seen[1].index, 3u);
  EXPECT_GE(rec->batches.load(), 2);
  EXPECT_TRUE(rec->started);

  // B leaves the set: signalling it no longer wakes the worker.
  ASSERT_TRUE(rec->Unwatch(b->fd()).ok());
  b->Signal();
  a->Signal();
  ASSERT_TRUE(Eventually([&] { return rec->seen().size() == 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(rec->seen().size(), 3u);
  EXPECT_EQ(rec->seen()[2].kind, 0u);

  t.Stop();
  EXPECT_FALSE(t.running());
  t.Stop();  // twice is fine
}

TEST(WorkerTest, StopEndsTheLoopWithOnStopOnTheWorkerThread) {
  if (testing::UnderQemuUser()) GTEST_SKIP() << "threads hang under qemu-user";
  auto a = EventFd::Create("a");
  ASSERT_TRUE(a.ok());
  std::atomic<int> stop_state{0};
  auto w = std::make_unique<RecordingWorker>(*a, *a, &stop_state);
  RecordingWorker* rec = w.get();
  WorkerThread t;
  ASSERT_TRUE(t.Start("worker-test", std::move(w)).ok());
  ASSERT_TRUE(Eventually([&] { return rec->started.load(); }));
  EXPECT_EQ(stop_state.load(), 0);
  t.Stop();  // joins: OnStop has run when it returns
  EXPECT_EQ(stop_state.load(), 1);
}

TEST(EventFdTest, CountsSignalsAndDrainsToZero) {
  auto e = EventFd::Create("test");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->Drain(), 0u);  // non-blocking: nothing yet
  e->Signal();
  e->Signal();
  EXPECT_EQ(e->Drain(), 2u);
  EXPECT_EQ(e->Drain(), 0u);
}

}  // namespace
}  // namespace edgevisor::virtio
