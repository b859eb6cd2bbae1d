// edgevisor-bench snapshot: restore against a cold boot and against QEMU's own save/restore,
// snapshot creation time and size, and memory per clone (snapshot.cc).
#pragma once

#include <map>
#include <string>

namespace edgevisor::bench {

int Snapshot(std::map<std::string, std::string> opts);

}  // namespace edgevisor::bench
