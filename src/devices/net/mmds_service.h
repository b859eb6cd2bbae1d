// The microVM metadata service (Firecracker's MMDS) without its network: a JSON data store that
// the API fills (PUT, PATCH) and reads (GET), and the answer to each HTTP request a guest sends
// (mmds_stack.h carries them). Version 2 asks the guest for a session token (PUT /latest/api/token
// with X-metadata-token-ttl-seconds) and then for that token on every GET; version 1 does not.
//
// Shared by the API thread and the network devices' threads: every method locks.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "src/devices/net/mmds_config.h"
#include "src/devices/net/mmds_http.h"

namespace edgevisor::mmds {

class Service {
 public:
  // Firecracker's default limit on the store (the API's payload limit), in serialized bytes.
  static constexpr size_t kDefaultStoreLimit = 51200;
  static constexpr size_t kMaxTokens = 1024;
  static constexpr int64_t kMaxTokenTtlS = 21600;

  explicit Service(size_t store_limit = kDefaultStoreLimit) : store_limit_(store_limit) {}

  // The version the guest speaks, and imds_compat (text/plain whatever the Accept header).
  void Configure(MmdsConfig::Version v, bool imds_compat);

  // PUT /mmds: replaces the store with DATA (a JSON object within the limit).
  absl::Status Put(const nlohmann::json& data);
  // PATCH /mmds: an RFC 7396 merge patch onto the store, which a PUT must have filled first.
  absl::Status Patch(const nlohmann::json& patch);
  // GET /mmds: the whole store ({} until a PUT).
  nlohmann::json Get() const;

  // One guest request, answered; NOW decides which session tokens still hold.
  HttpResponse Handle(const HttpRequest& req, absl::Time now);

 private:
  // Whether STORE, serialized, fits the limit (the error says by how much it does not).
  absl::Status CheckSize(const nlohmann::json& store) const;
  HttpResponse NewToken(const HttpRequest& req, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool TokenValid(const HttpRequest& req, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HttpResponse Lookup(const HttpRequest& req) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t store_limit_;
  mutable absl::Mutex mu_;
  MmdsConfig::Version version_ ABSL_GUARDED_BY(mu_) = MmdsConfig::Version::kV1;
  bool imds_compat_ ABSL_GUARDED_BY(mu_) = false;
  nlohmann::json data_ ABSL_GUARDED_BY(mu_) = nlohmann::json::object();
  bool filled_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, absl::Time> tokens_ ABSL_GUARDED_BY(mu_);  // token -> expiry
};

// The IMDS text form of VALUE: an object's keys one per line (a nested object's with '/'), a
// string as it is; nullopt for the other types, which only JSON can show.
std::optional<std::string> ImdsText(const nlohmann::json& value);

}  // namespace edgevisor::mmds
