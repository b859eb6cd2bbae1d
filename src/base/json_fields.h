// Reading JSON objects field by field, with errors that name the field ("vms[0].name: must be a
// string"). Shared by the Firecracker config/API parser and the appliance config.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace edgevisor::json_fields {

using Json = nlohmann::json;

inline std::string Field(const std::string& where, const std::string& key) {
  return where.empty() ? key : where + "." + key;
}

inline absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field.empty() ? "body" : field, ": ", why));
}

// Checks that `obj` is an object whose keys are all in `known`.
inline absl::Status CheckObject(const Json& obj, const std::string& where,
                                const std::set<std::string>& known) {
  if (!obj.is_object()) return Bad(where, "must be a JSON object");
  for (const auto& [key, value] : obj.items()) {
    if (!known.count(key)) return Bad(Field(where, key), "unknown field");
  }
  return absl::OkStatus();
}

inline absl::StatusOr<std::string> GetString(const Json& obj, const std::string& where,
                                             const std::string& key, bool required) {
  if (!obj.contains(key) || obj[key].is_null()) {
    if (required) return Bad(Field(where, key), "missing required field");
    return std::string();
  }
  if (!obj[key].is_string()) return Bad(Field(where, key), "must be a string");
  return obj[key].get<std::string>();
}

inline absl::StatusOr<bool> GetBool(const Json& obj, const std::string& where,
                                    const std::string& key, bool required, bool fallback) {
  if (!obj.contains(key)) {
    if (required) return Bad(Field(where, key), "missing required field");
    return fallback;
  }
  if (!obj[key].is_boolean()) return Bad(Field(where, key), "must be true or false");
  return obj[key].get<bool>();
}

inline absl::StatusOr<uint64_t> GetUint(const Json& obj, const std::string& where,
                                        const std::string& key, uint64_t min, uint64_t max) {
  if (!obj.contains(key)) return Bad(Field(where, key), "missing required field");
  if (!obj[key].is_number_unsigned()) {
    return Bad(Field(where, key), "must be a non-negative integer");
  }
  const uint64_t v = obj[key].get<uint64_t>();
  if (v < min || v > max) {
    return Bad(Field(where, key), absl::StrFormat("%d is outside [%d, %d]", v, min, max));
  }
  return v;
}

// An array of at most MAX_LEN bytes (numbers 0-255), as device state stores a FIFO's contents.
inline absl::StatusOr<std::vector<uint8_t>> GetBytes(const Json& obj, const std::string& where,
                                                     const std::string& key, size_t max_len) {
  if (!obj.contains(key)) return Bad(Field(where, key), "missing required field");
  const Json& a = obj[key];
  if (!a.is_array() || a.size() > max_len) {
    return Bad(Field(where, key), absl::StrFormat("must be an array of at most %d bytes", max_len));
  }
  std::vector<uint8_t> out;
  for (const Json& b : a) {
    if (!b.is_number_unsigned() || b.get<uint64_t>() > 0xff) {
      return Bad(Field(where, key), "must hold numbers from 0 to 255");
    }
    out.push_back(static_cast<uint8_t>(b.get<uint64_t>()));
  }
  return out;
}

}  // namespace edgevisor::json_fields
