#include "src/appliance/jail.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "src/base/errors.h"
#include "src/base/fd.h"
#include "src/base/read_file.h"

namespace edgevisor::appliance {
namespace {

using Json = nlohmann::json;
using JailFile = std::tuple<std::string, std::string, bool>;  // host path, jail name, writable

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Replaces OBJ[KEY] (a host path) with a jail-relative name, remembering the file.
void Relocate(Json& obj, const char* key, const std::string& name, bool writable,
              std::vector<JailFile>* files) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return;
  files->emplace_back(obj[key].get<std::string>(), name, writable);
  obj[key] = "/" + name;
}

absl::Status WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid() || write(fd.get(), text.data(), text.size()) != ssize_t(text.size())) {
    return ErrnoError(absl::StrCat("write ", path));
  }
  return absl::OkStatus();
}

// Bind-mounts the host file SRC onto DST (created empty), read-only unless WRITABLE.
absl::Status BindFile(const std::string& src, const std::string& dst, bool writable) {
  EV_RETURN_IF_ERROR(WriteFile(dst, "", 0600));
  if (mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return ErrnoError(absl::StrFormat("bind-mount %s into the jail", src));
  }
  if (!writable && mount(nullptr, dst.c_str(), nullptr,
                         MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    return ErrnoError(absl::StrFormat("make %s read-only in the jail", src));
  }
  return absl::OkStatus();
}

std::string FirstLine(const std::string& path) {
  auto text = ReadSmallFile(path, 4096);
  if (!text.ok()) return "?";
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The value after "KEY:\t" in a /proc status file, up to the first tab or newline.
std::string StatusField(const std::string& status, const std::string& key) {
  const size_t at = status.find("\n" + key + ":\t");
  if (at == std::string::npos) return "?";
  const size_t from = at + key.size() + 3;
  return status.substr(from, status.find_first_of("\t\n", from) - from);
}

// A cgroup of its own, always; "max" where appliance.json sets no limit.
void AddCgroupArgs(const JailSpec& spec, std::vector<std::string>& argv) {
  argv.push_back("--cgroup-version");
  argv.push_back("2");
  argv.push_back("--cgroup");
  argv.push_back(spec.memory_max_mib
                     ? absl::StrFormat("memory.max=%d", int64_t{*spec.memory_max_mib} << 20)
                     : "memory.max=max");
  argv.push_back("--cgroup");
  argv.push_back(spec.cpu_max_percent
                     ? absl::StrFormat("cpu.max=%d 100000", *spec.cpu_max_percent * 1000)
                     : "cpu.max=max 100000");
}

}  // namespace

std::string JailRoot(const JailSpec& spec) {
  return absl::StrCat(spec.base, "/", BaseName(spec.edgevisor), "/", spec.vm, "/root");
}

absl::StatusOr<std::string> JailConfig(const std::string& text, std::vector<JailFile>* files) {
  Json fc = Json::parse(text, nullptr, false);
  if (!fc.is_object()) return absl::InvalidArgumentError("the VM's config is not a JSON object");
  if (fc.contains("boot-source")) {
    Relocate(fc["boot-source"], "kernel_image_path", "kernel", false, files);
    Relocate(fc["boot-source"], "initrd_path", "initrd", false, files);
  }
  if (fc.contains("drives") && fc["drives"].is_array()) {
    for (size_t i = 0; i < fc["drives"].size(); ++i) {
      Json& d = fc["drives"][i];
      const bool ro = d.is_object() && d.value("is_read_only", false);
      Relocate(d, "path_on_host", absl::StrFormat("drive%d", i), !ro, files);
    }
  }
  if (fc.contains("logger")) Relocate(fc["logger"], "log_path", "vmm.log", true, files);
  if (fc.contains("metrics")) Relocate(fc["metrics"], "metrics_path", "metrics", true, files);
  return fc.dump(2) + "\n";
}

std::vector<std::string> JailerArgv(const JailSpec& spec) {
  const std::string id = std::to_string(spec.uid);
  std::vector<std::string> argv = {
      spec.jailer, "--id",  spec.vm, "--exec-file",       spec.edgevisor, "--uid",
      id,          "--gid", id,      "--chroot-base-dir", spec.base};
  if (spec.own_cgroup) AddCgroupArgs(spec, argv);
  for (const char* a : {"--", "--config-file", "/config.json", "--no-api", "--reboot-exit-code"}) {
    argv.push_back(a);
  }
  argv.push_back(std::to_string(spec.reboot_exit_code));
  return argv;
}

absl::StatusOr<std::vector<std::string>> PrepareJail(const JailSpec& spec) {
  CleanJail(spec);
  EV_ASSIGN_OR_RETURN(const std::string text, ReadSmallFile(spec.config));
  std::vector<JailFile> files;
  EV_ASSIGN_OR_RETURN(const std::string jailed, JailConfig(text, &files));
  const std::string root = JailRoot(spec);
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrFormat("mkdir %s: %s", root, ec.message()));
  for (const auto& [src, name, writable] : files) {
    EV_RETURN_IF_ERROR(BindFile(src, root + "/" + name, writable));
    if (writable && chown(src.c_str(), spec.uid, spec.uid) != 0) {
      return ErrnoError(absl::StrFormat("give %s to uid %d", src, spec.uid));
    }
  }
  EV_RETURN_IF_ERROR(WriteFile(root + "/config.json", jailed, 0644));
  return JailerArgv(spec);
}

void CleanJail(const JailSpec& spec) {
  const std::string root = JailRoot(spec);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    umount2(entry.path().c_str(), MNT_DETACH);  // the bind-mounted files; EINVAL for the rest
  }
  std::filesystem::remove_all(root.substr(0, root.size() - 5), ec);  // <base>/edgevisor/<vm>
  rmdir(absl::StrCat(spec.cgroup_root, "/", BaseName(spec.edgevisor), "/", spec.vm).c_str());
}

std::string DescribeContainment(pid_t pid, const std::string& cgroup_root) {
  const std::string proc = absl::StrCat("/proc/", pid);
  const std::string status = absl::StrCat("\n", ReadSmallFile(proc + "/status").value_or(""));
  int threads = 0, filtered = 0;
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator(proc + "/task", ec)) {
    ++threads;
    const std::string ts =
        absl::StrCat("\n", ReadSmallFile(t.path().string() + "/status").value_or(""));
    if (StatusField(ts, "Seccomp") == "2") ++filtered;
  }
  // "0::/edgevisor/demo" on cgroup v2.
  std::string cgroup = FirstLine(proc + "/cgroup");
  if (const size_t c = cgroup.rfind(':'); c != std::string::npos) cgroup = cgroup.substr(c + 1);
  const std::string dir = cgroup_root + cgroup;
  return absl::StrFormat(
      "uid=%s gid=%s CapEff=%s NoNewPrivs=%s seccomp=2 on %d of %d threads cgroup=%s "
      "memory.max=%s cpu.max=%s",
      StatusField(status, "Uid"), StatusField(status, "Gid"), StatusField(status, "CapEff"),
      StatusField(status, "NoNewPrivs"), filtered, threads, cgroup, FirstLine(dir + "/memory.max"),
      FirstLine(dir + "/cpu.max"));
}

}  // namespace edgevisor::appliance
