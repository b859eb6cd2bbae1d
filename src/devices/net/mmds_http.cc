#include "src/devices/net/mmds_http.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace edgevisor::mmds {
namespace {

absl::Status Bad(absl::string_view why) { return absl::InvalidArgumentError(why); }

// RFC 9110's token characters (method and header names).
bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) == 0 &&
        absl::string_view("!#$%&'*+-.^_`|~").find(c) == absl::string_view::npos)
      return false;
  }
  return true;
}

// Splits the head (request line and headers) into lines, CRLF or LF ended.
std::vector<absl::string_view> Lines(absl::string_view head) {
  std::vector<absl::string_view> out;
  for (absl::string_view l : absl::StrSplit(head, '\n')) {
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    out.push_back(l);
  }
  return out;
}

absl::Status ParseRequestLine(absl::string_view line, HttpRequest& r) {
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3) return Bad("the request line is not METHOD TARGET VERSION");
  if (!IsToken(parts[0])) return Bad("the method is not a token");
  if (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") return Bad("not HTTP/1.0 or HTTP/1.1");
  absl::string_view target = parts[1];
  if (target.empty() || target[0] != '/') return Bad("the target is not an absolute path");
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return Bad("a control byte in the target");
  }
  target = target.substr(0, target.find_first_of("?#"));
  r.method = std::string(parts[0]);
  r.path = std::string(target);
  return absl::OkStatus();
}

absl::Status ParseHeader(absl::string_view line, HttpRequest& r) {
  if (line[0] == ' ' || line[0] == '\t') return Bad("a folded header line");
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return Bad("a header line without ':'");
  const absl::string_view name = line.substr(0, colon);
  if (!IsToken(name)) return Bad("a header name that is not a token");
  const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  for (char c : value) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
      return Bad("a control byte in a header value");
  }
  std::string key = absl::AsciiStrToLower(name);
  if (r.headers.contains(key)) return Bad(absl::StrCat("header ", key, " twice"));
  if (r.headers.size() >= kMaxHeaders) return Bad("too many headers");
  r.headers.emplace(std::move(key), std::string(value));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<HttpRequest>> ParseRequest(absl::string_view bytes) {
  size_t end = bytes.find("\r\n\r\n");
  size_t sep = 4;
  if (const size_t lf = bytes.find("\n\n"); lf != absl::string_view::npos && lf < end) {
    end = lf;
    sep = 2;
  }
  if (end == absl::string_view::npos) {
    if (bytes.size() >= kMaxRequestBytes) return absl::ResourceExhaustedError("request too long");
    return std::nullopt;
  }
  if (end + sep > kMaxRequestBytes) return absl::ResourceExhaustedError("request too long");
  HttpRequest r;
  std::vector<absl::string_view> lines = Lines(bytes.substr(0, end));
  if (absl::Status s = ParseRequestLine(lines[0], r); !s.ok()) return s;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) return Bad("an empty header line");
    if (absl::Status s = ParseHeader(lines[i], r); !s.ok()) return s;
  }
  if (r.headers.contains("transfer-encoding")) return Bad("Transfer-Encoding is not supported");
  size_t length = 0;
  if (auto cl = r.Header("content-length")) {
    if (!absl::SimpleAtoi(*cl, &length) || (*cl)[0] == '+' || (*cl)[0] == '-')
      return Bad("Content-Length is not a number");
  }
  if (end + sep + length > kMaxRequestBytes)
    return absl::ResourceExhaustedError("request too long");
  if (bytes.size() < end + sep + length) return std::nullopt;
  r.body = std::string(bytes.substr(end + sep, length));
  r.consumed = end + sep + length;
  return r;
}

std::string Serialize(const HttpResponse& r) {
  static const std::map<int, const char*> kReasons = {{200, "OK"},
                                                      {400, "Bad Request"},
                                                      {401, "Unauthorized"},
                                                      {404, "Not Found"},
                                                      {405, "Method Not Allowed"},
                                                      {413, "Payload Too Large"},
                                                      {501, "Not Implemented"}};
  auto it = kReasons.find(r.status);
  return absl::StrFormat(
      "HTTP/1.1 %d %s\r\nServer: edgevisor-mmds\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
      "Connection: close\r\n\r\n%s",
      r.status, it == kReasons.end() ? "Error" : it->second, r.content_type, r.body.size(), r.body);
}

}  // namespace edgevisor::mmds
