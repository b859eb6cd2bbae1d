#include "src/devices/net/mmds_service.h"

#include <sys/random.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace edgevisor::mmds {

using Json = nlohmann::json;

void Service::Configure(MmdsConfig::Version v, bool imds_compat) {
  absl::MutexLock lock(&mu_);
  version_ = v;
  imds_compat_ = imds_compat;
}

absl::Status Service::CheckSize(const Json& store) const {
  const size_t size = store.dump().size();
  if (size <= store_limit_) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "body: the data store would hold %d bytes, over its %d-byte limit", size, store_limit_));
}

absl::Status Service::Put(const Json& data) {
  if (!data.is_object()) return absl::InvalidArgumentError("body: must be a JSON object");
  if (absl::Status s = CheckSize(data); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  data_ = data;
  filled_ = true;
  return absl::OkStatus();
}

absl::Status Service::Patch(const Json& patch) {
  absl::MutexLock lock(&mu_);
  if (!filled_) {
    return absl::FailedPreconditionError("the data store is empty: PUT /mmds first");
  }
  Json next = data_;
  next.merge_patch(patch);
  if (!next.is_object()) return absl::InvalidArgumentError("body: the store must stay an object");
  if (absl::Status s = CheckSize(next); !s.ok()) return s;
  data_ = std::move(next);
  return absl::OkStatus();
}

Json Service::Get() const {
  absl::MutexLock lock(&mu_);
  return data_;
}

std::optional<std::string> ImdsText(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_object()) return std::nullopt;
  std::vector<std::string> keys;
  for (const auto& [k, v] : value.items()) keys.push_back(v.is_object() ? k + "/" : k);
  return absl::StrJoin(keys, "\n");
}

HttpResponse Service::Handle(const HttpRequest& req, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (req.method == "PUT") {
    if (req.path != "/latest/api/token") {
      return {.status = 405, .content_type = "text/plain", .body = "PUT is for /latest/api/token"};
    }
    return NewToken(req, now);
  }
  if (req.method != "GET") {
    return {.status = 405, .content_type = "text/plain", .body = "Only GET and PUT are allowed"};
  }
  if (version_ == MmdsConfig::Version::kV2 && !TokenValid(req, now)) {
    return {.status = 401,
            .content_type = "text/plain",
            .body = "MMDS v2 needs a valid X-metadata-token (PUT /latest/api/token)"};
  }
  return Lookup(req);
}

HttpResponse Service::NewToken(const HttpRequest& req, absl::Time now) {
  auto bad = [](const std::string& why) {
    return HttpResponse{.status = 400, .content_type = "text/plain", .body = why};
  };
  // A token must come from the guest itself, not through a proxy in it (Firecracker's rule,
  // against request forgery).
  if (req.Header("x-forwarded-for")) return bad("X-Forwarded-For is not allowed here");
  int64_t ttl = 0;
  auto ttl_header = req.Header("x-metadata-token-ttl-seconds");
  if (!ttl_header || !absl::SimpleAtoi(*ttl_header, &ttl) || ttl < 1 || ttl > kMaxTokenTtlS) {
    return bad(absl::StrFormat("X-metadata-token-ttl-seconds must be 1 to %d", kMaxTokenTtlS));
  }
  std::erase_if(tokens_, [&](const auto& t) { return t.second <= now; });
  if (tokens_.size() >= kMaxTokens) {  // the one that would expire first makes room
    auto first = tokens_.begin();
    for (auto it = tokens_.begin(); it != tokens_.end(); ++it) {
      if (it->second < first->second) first = it;
    }
    tokens_.erase(first);
  }
  uint8_t raw[32];
  if (getrandom(raw, sizeof(raw), 0) != static_cast<ssize_t>(sizeof(raw))) {
    return {.status = 500, .content_type = "text/plain", .body = "no randomness for a token"};
  }
  std::string token =
      absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
  tokens_[token] = now + absl::Seconds(ttl);
  return {.status = 200, .content_type = "text/plain", .body = std::move(token)};
}

bool Service::TokenValid(const HttpRequest& req, absl::Time now) {
  auto token = req.Header("x-metadata-token");
  if (!token) return false;
  auto it = tokens_.find(*token);
  return it != tokens_.end() && it->second > now;
}

HttpResponse Service::Lookup(const HttpRequest& req) const {
  const Json* at = &data_;
  for (absl::string_view key : absl::StrSplit(req.path, '/', absl::SkipEmpty())) {
    if (!at->is_object()) return {.status = 404, .content_type = "text/plain", .body = "Not Found"};
    auto it = at->find(std::string(key));
    if (it == at->end()) return {.status = 404, .content_type = "text/plain", .body = "Not Found"};
    at = &*it;
  }
  auto accept = req.Header("accept");
  if (!imds_compat_ && accept && accept->find("application/json") != std::string::npos) {
    return {.status = 200, .content_type = "application/json", .body = at->dump()};
  }
  std::optional<std::string> text = ImdsText(*at);
  if (!text) {
    return {.status = 501,
            .content_type = "text/plain",
            .body = "This value has no IMDS text form: ask with Accept: application/json"};
  }
  return {.status = 200, .content_type = "text/plain", .body = std::move(*text)};
}

}  // namespace edgevisor::mmds
