#include "src/appliance/update.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "src/appliance/supervisor.h"
#include "src/base/errors.h"
#include "src/base/fd.h"
#include "src/base/read_file.h"

namespace edgevisor::appliance::update {
namespace {

using Json = nlohmann::json;
constexpr size_t kChunk = 1 << 20;

std::string Errno(const std::string& what) { return absl::StrCat(what, ": ", strerror(errno)); }

// A line to the console and to update.log.
void Say(const Paths& paths, const std::function<void(const std::string&)>& say,
         const std::string& line) {
  const std::string l = "ev-appliance: update: " + line;
  if (say) say(l);
  // The log is what an operator reads after a power cut: each line is synced.
  UniqueFd fd(open(paths.log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  const std::string text = absl::StrCat(UtcStamp(), " ", l, "\n");
  if (!fd.valid() ||
      write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    if (say) say("ev-appliance: update: cannot write " + paths.log + ": " + strerror(errno));
  } else {
    fdatasync(fd.get());
  }
}

// Writes PATH atomically (a temporary file, fsync, rename, fsync of the directory).
absl::Status WriteDurable(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid() ||
      write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      fsync(fd.get()) != 0) {
    return absl::InternalError(Errno(tmp));
  }
  fd.Reset();
  if (rename(tmp.c_str(), path.c_str()) != 0) return absl::InternalError(Errno(path));
  const std::string dir = path.substr(0, path.rfind('/'));
  UniqueFd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.valid()) fsync(d.get());
  return absl::OkStatus();
}

std::optional<Json> ReadJson(const std::string& path) {
  auto text = ReadSmallFile(path);
  if (!text.ok()) return std::nullopt;
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

void RecordLast(const Paths& paths, Json last) {
  last["time"] = UtcStamp();
  mkdir(paths.state_dir.c_str(), 0755);
  (void)WriteDurable(paths.state_dir + "/last.json", last.dump(2) + "\n");
}

// ---- sources ---------------------------------------------------------------------------------

class Source {
 public:
  virtual ~Source() = default;
  // Up to OUT's size bytes; 0 at the end.
  virtual absl::StatusOr<size_t> Read(absl::Span<uint8_t> out) = 0;
  // The total size where known (a file).
  virtual std::optional<uint64_t> Size() const { return std::nullopt; }
  // For a file: its bytes at OFFSET, without moving the stream.
  virtual absl::StatusOr<size_t> ReadAt(uint64_t, absl::Span<uint8_t>) {
    return absl::UnimplementedError("not a file");
  }
  // Called at the end of the stream: whether it ended well (the download's exit status).
  virtual absl::Status Finish() { return absl::OkStatus(); }
};

class FileSource : public Source {
 public:
  static absl::StatusOr<std::unique_ptr<FileSource>> Open(const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || fstat(fd.get(), &st) != 0) return absl::NotFoundError(Errno(path));
    if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path + ": not a regular file");
    auto s = std::make_unique<FileSource>();
    s->fd_ = std::move(fd);
    s->size_ = static_cast<uint64_t>(st.st_size);
    return s;
  }
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> out) override {
    const ssize_t n = read(fd_.get(), out.data(), out.size());
    if (n < 0) return absl::DataLossError(Errno("read"));
    return static_cast<size_t>(n);
  }
  std::optional<uint64_t> Size() const override { return size_; }
  absl::StatusOr<size_t> ReadAt(uint64_t off, absl::Span<uint8_t> out) override {
    const ssize_t n = pread(fd_.get(), out.data(), out.size(), static_cast<off_t>(off));
    if (n < 0) return absl::DataLossError(Errno("read"));
    return static_cast<size_t>(n);
  }

 private:
  UniqueFd fd_;
  uint64_t size_ = 0;
};

// A download: busybox's (or any) wget writing the body to a pipe. The appliance pulls; nothing
// listens. The size limit and the time limit are enforced here, and the child is killed on any
// early end.
class UrlSource : public Source {
 public:
  static absl::StatusOr<std::unique_ptr<UrlSource>> Open(const std::string& url, uint64_t max,
                                                         int timeout_s) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return absl::InternalError(Errno("pipe"));
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(p[1], 1);
      // wget's own messages (connecting, errors) go to our stderr: the console. No -T: bookworm's
      // busybox wget crashes (SIGSEGV) with it; the time limit is ours (Read's poll).
      execlp("wget", "wget", "-O", "-", url.c_str(), nullptr);
      _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
      close(p[0]);
      return absl::InternalError(Errno("fork"));
    }
    auto s = std::make_unique<UrlSource>();
    s->fd_ = UniqueFd(p[0]);
    s->pid_ = pid;
    s->max_ = max;
    s->deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    return s;
  }
  ~UrlSource() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  absl::StatusOr<size_t> Read(absl::Span<uint8_t> out) override {
    const auto left = deadline_ - std::chrono::steady_clock::now();
    const int ms =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count());
    pollfd pfd{fd_.get(), POLLIN, 0};
    if (ms <= 0 || poll(&pfd, 1, ms) == 0) {
      return absl::DeadlineExceededError("the download took longer than its time limit");
    }
    const ssize_t n = read(fd_.get(), out.data(), out.size());
    if (n < 0) return absl::DataLossError(Errno("read from wget"));
    if (n == 0) {  // the end: a download that failed says so, not "truncated"
      EV_RETURN_IF_ERROR(Finish());
      return 0;
    }
    got_ += static_cast<uint64_t>(n);
    if (got_ > max_) {
      return absl::ResourceExhaustedError(absl::StrFormat("the download exceeds %d bytes", max_));
    }
    return static_cast<size_t>(n);
  }
  absl::Status Finish() override {
    if (pid_ < 0) return finished_;
    int status = 0;
    const pid_t pid = pid_;
    pid_ = -1;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      finished_ = absl::UnavailableError(absl::StrFormat(
          "the download failed (wget %s)",
          WIFEXITED(status) ? absl::StrFormat("exit %d", WEXITSTATUS(status))
                            : absl::StrFormat("killed by signal %d", WTERMSIG(status))));
    }
    return finished_;
  }

 private:
  UniqueFd fd_;
  pid_t pid_ = -1;
  uint64_t max_ = 0, got_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  absl::Status finished_;
};

// Exactly OUT's size bytes, or "truncated".
absl::Status ReadFull(Source& s, absl::Span<uint8_t> out, const std::string& what) {
  size_t done = 0;
  while (done < out.size()) {
    EV_ASSIGN_OR_RETURN(const size_t n, s.Read(out.subspan(done)));
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "truncated: the bundle ends inside its %s (%d of %d bytes)", what, done, out.size()));
    }
    done += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> DeviceSize(const std::string& dev) {
  UniqueFd fd(open(dev.c_str(), O_RDONLY | O_CLOEXEC));
  uint64_t bytes = 0;
  if (!fd.valid() || ioctl(fd.get(), BLKGETSIZE64, &bytes) != 0) {
    return absl::NotFoundError(Errno(dev));
  }
  return bytes;
}

// The sha256 of SIZE bytes that READ(offset, buffer) gives, read in chunks; a read of 0 bytes
// before the end is an error (READ says which).
absl::StatusOr<bundle::Sha256> HashRange(
    uint64_t size,
    const std::function<absl::StatusOr<size_t>(uint64_t, absl::Span<uint8_t>)>& read) {
  bundle::Hasher h;
  std::vector<uint8_t> buf(kChunk);
  for (uint64_t off = 0; off < size;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    EV_ASSIGN_OR_RETURN(const size_t n, read(off, absl::MakeSpan(buf.data(), want)));
    h.Update(absl::MakeConstSpan(buf.data(), n));
    off += n;
  }
  return h.Finish();
}

char Other(char slot) { return slot == 'A' ? 'B' : 'A'; }

}  // namespace

// ---- partitions and grubenv --------------------------------------------------------------------

absl::StatusOr<std::string> FindPartition(const Paths& paths, const std::string& name) {
  DIR* d = opendir(paths.sys_block.c_str());
  if (d == nullptr) return absl::NotFoundError(Errno(paths.sys_block));
  std::string found;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto text = ReadSmallFile(paths.sys_block + "/" + e->d_name + "/uevent", 1 << 16);
    if (text.ok() && absl::StrContains(*text, "\nPARTNAME=" + name + "\n")) {
      found = std::string("/dev/") + e->d_name;
      break;
    }
  }
  closedir(d);
  if (found.empty()) return absl::NotFoundError(absl::StrFormat("no partition named %s", name));
  return found;
}

absl::StatusOr<GrubenvStore> GrubenvStore::Open(const Paths& paths) {
  EV_ASSIGN_OR_RETURN(const std::string esp, FindPartition(paths, "ESP"));
  mkdir(paths.esp_mount.c_str(), 0700);
  if (mount(esp.c_str(), paths.esp_mount.c_str(), "vfat", MS_RDONLY | MS_NOSUID | MS_NODEV,
            nullptr) != 0 &&
      errno != EBUSY) {
    return absl::InternalError(Errno("mount " + esp));
  }
  const std::string file = paths.esp_mount + "/EFI/edgevisor/grubenv";
  UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
  int bsz = 0;
  int first = 0, second = 1;
  struct stat st {};
  const bool ok =
      fd.valid() && fstat(fd.get(), &st) == 0 && ioctl(fd.get(), FIGETBSZ, &bsz) == 0 && bsz > 0 &&
      ioctl(fd.get(), FIBMAP, &first) == 0 &&
      (bsz >= static_cast<int>(grubenv::kBlockSize) || ioctl(fd.get(), FIBMAP, &second) == 0);
  const int err = errno;
  fd.Reset();
  umount2(paths.esp_mount.c_str(), MNT_DETACH);
  if (!ok) return absl::InternalError(absl::StrCat(file, ": ", strerror(err)));
  if (st.st_size != static_cast<off_t>(grubenv::kBlockSize)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s is %d bytes, not %d", file, st.st_size, grubenv::kBlockSize));
  }
  // Both sectors of the block next to each other (GRUB's save_env needs that too).
  if (bsz < static_cast<int>(grubenv::kBlockSize) &&
      (first == 0 || static_cast<uint64_t>(second) * bsz !=
                         static_cast<uint64_t>(first) * bsz + static_cast<uint64_t>(bsz))) {
    return absl::FailedPreconditionError(file + " is fragmented");
  }
  GrubenvStore s;
  s.device_ = esp;
  s.offset_ = static_cast<uint64_t>(first) * static_cast<uint64_t>(bsz);
  // The sectors found must hold a GRUB environment block.
  EV_RETURN_IF_ERROR(s.Read().status());
  return s;
}

absl::StatusOr<grubenv::Env> GrubenvStore::Read() const {
  UniqueFd fd(open(device_.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  void* buf = nullptr;
  if (!fd.valid() || posix_memalign(&buf, 4096, grubenv::kBlockSize) != 0) {
    return absl::InternalError(Errno(device_));
  }
  std::unique_ptr<void, decltype(&free)> hold(buf, &free);
  if (pread(fd.get(), buf, grubenv::kBlockSize, static_cast<off_t>(offset_)) !=
      static_cast<ssize_t>(grubenv::kBlockSize)) {
    return absl::DataLossError(Errno("read grubenv from " + device_));
  }
  return grubenv::Parse(std::string_view(static_cast<char*>(buf), grubenv::kBlockSize));
}

absl::Status GrubenvStore::Write(const grubenv::Env& env) const {
  EV_ASSIGN_OR_RETURN(const std::string block, grubenv::Render(env));
  UniqueFd fd(open(device_.c_str(), O_RDWR | O_DIRECT | O_SYNC | O_CLOEXEC));
  void* buf = nullptr;
  if (!fd.valid() || posix_memalign(&buf, 4096, grubenv::kSector) != 0) {
    return absl::InternalError(Errno(device_));
  }
  std::unique_ptr<void, decltype(&free)> hold(buf, &free);
  std::memcpy(buf, block.data(), grubenv::kSector);
  // The second sector is all '#' before and after (Render keeps every variable in the first):
  // the one sector below is the whole change.
  if (pwrite(fd.get(), buf, grubenv::kSector, static_cast<off_t>(offset_)) !=
          static_cast<ssize_t>(grubenv::kSector) ||
      fsync(fd.get()) != 0) {
    return absl::DataLossError(Errno("write grubenv to " + device_));
  }
  fd.Reset();
  EV_ASSIGN_OR_RETURN(const grubenv::Env back, Read());
  if (back.vars != env.vars) {
    return absl::DataLossError("grubenv read back differs from what was written");
  }
  return absl::OkStatus();
}

absl::StatusOr<Running> ReadRunning(const Paths& paths) {
  Running r;
  auto slot = ReadSmallFile(paths.running_slot, 64);
  if (!slot.ok()) return slot.status();
  const std::string s(absl::StripAsciiWhitespace(*slot));
  if (s != "A" && s != "B")
    return absl::FailedPreconditionError(paths.running_slot + ": not A or B");
  r.slot = s[0];
  auto rel = ReadJson(paths.release);
  if (!rel) return absl::FailedPreconditionError(paths.release + ": missing or not JSON");
  r.release = *rel;
  if (!rel->contains("arch") || !(*rel)["arch"].is_string() || !rel->contains("version") ||
      !(*rel)["version"].is_string()) {
    return absl::FailedPreconditionError(paths.release + ": no arch or version");
  }
  r.arch = (*rel)["arch"].get<std::string>();
  EV_ASSIGN_OR_RETURN(r.version, bundle::ParseVersion((*rel)["version"].get<std::string>()));
  return r;
}

// ---- update ----------------------------------------------------------------------------------

namespace {

// The A/B state as this boot sees it: the running release and grubenv.
struct AbView {
  Running running;
  GrubenvStore store;
  grubenv::Env env;
  grubenv::AbState ab;
  // grubenv's next_slot is the running slot, and it is not yet committed.
  bool on_trial() const { return ab.next_slot == running.slot && ab.slot != running.slot; }
};

absl::StatusOr<AbView> ReadAbView(const Paths& paths) {
  AbView v;
  EV_ASSIGN_OR_RETURN(v.running, ReadRunning(paths));
  EV_ASSIGN_OR_RETURN(v.store, GrubenvStore::Open(paths));
  EV_ASSIGN_OR_RETURN(v.env, v.store.Read());
  v.ab = grubenv::ReadAb(v.env);
  return v;
}

}  // namespace

namespace {

struct Verified {
  bundle::Manifest manifest;
  uint64_t payload_offset = 0;
};

// Step 1: the header, the manifest and its signature.
absl::StatusOr<Verified> VerifySigned(const std::string& keys_path, Source& src) {
  std::vector<uint8_t> head(bundle::kHeaderSize);
  EV_RETURN_IF_ERROR(ReadFull(src, absl::MakeSpan(head), "header"));
  EV_ASSIGN_OR_RETURN(const uint32_t mlen, bundle::ParseHeader(head));
  head.resize(bundle::kHeaderSize + mlen);
  EV_RETURN_IF_ERROR(ReadFull(src, absl::MakeSpan(head).subspan(bundle::kHeaderSize), "manifest"));
  std::vector<uint8_t> sig(bundle::kSignatureSize);
  EV_RETURN_IF_ERROR(ReadFull(src, absl::MakeSpan(sig), "signature"));
  auto key_text = ReadSmallFile(keys_path, 1 << 16);
  if (!key_text.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no trusted keys: ", key_text.status().message()));
  }
  auto keys = bundle::ParseKeys(*key_text);
  if (!keys.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(keys_path, ": ", keys.status().message()));
  }
  EV_RETURN_IF_ERROR(bundle::VerifySignature(head, sig, *keys));
  const std::string_view mtext(reinterpret_cast<const char*>(head.data()) + bundle::kHeaderSize,
                               mlen);
  Verified v;
  EV_ASSIGN_OR_RETURN(v.manifest, bundle::ParseManifest(mtext));
  v.payload_offset = head.size() + sig.size();
  return v;
}

// Step 3, for a file: its size, and the slot image's sha256 read once.
absl::Status VerifyPayload(Source& src, const Verified& v) {
  const uint64_t want = v.payload_offset + v.manifest.slot_size;
  if (*src.Size() != want) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: the bundle is %d bytes; its manifest makes it %d",
                        *src.Size() < want ? "truncated" : "trailing bytes", *src.Size(), want));
  }
  EV_ASSIGN_OR_RETURN(
      const bundle::Sha256 sha,
      HashRange(v.manifest.slot_size,
                [&](uint64_t off, absl::Span<uint8_t> buf) -> absl::StatusOr<size_t> {
                  EV_ASSIGN_OR_RETURN(const size_t n, src.ReadAt(v.payload_offset + off, buf));
                  if (n == 0) {
                    return absl::InvalidArgumentError("truncated: the file shrank while read");
                  }
                  return n;
                }));
  if (sha != v.manifest.slot_sha256) {
    return absl::InvalidArgumentError(
        "the slot image's sha256 is not the one the signed manifest names (a corrupted bundle)");
  }
  return absl::OkStatus();
}

// Steps 1 to 3: everything that can refuse the bundle, before any write.
absl::StatusOr<Verified> Verify(const Paths& paths, Source& src, const Running& running,
                                const std::string& target_dev) {
  EV_ASSIGN_OR_RETURN(Verified v, VerifySigned(paths.keys, src));
  EV_RETURN_IF_ERROR(bundle::CheckApplicable(v.manifest, running.arch, running.version));
  EV_ASSIGN_OR_RETURN(const uint64_t part, DeviceSize(target_dev));
  if (v.manifest.slot_size > part) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the release's slot image is %d bytes; the slot partition %s holds %d",
                        v.manifest.slot_size, target_dev, part));
  }
  if (src.Size()) EV_RETURN_IF_ERROR(VerifyPayload(src, v));
  return v;
}

// Step 4: the squashfs into DEV, hashed on the way, then read back from the disk.
absl::Status WriteSlot(const Paths& paths, const Options& opts, Source& src,
                       const bundle::Manifest& m, const std::string& dev, char slot) {
  // O_EXCL on a block device: refused while anything has it mounted (the running slot is).
  UniqueFd fd(open(dev.c_str(), O_WRONLY | O_EXCL | O_CLOEXEC));
  if (!fd.valid()) return absl::FailedPreconditionError(Errno("open " + dev + " exclusively"));
  bundle::Hasher h;
  std::vector<uint8_t> buf(kChunk);
  uint64_t off = 0;
  int said = 0;
  while (off < m.slot_size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), m.slot_size - off));
    EV_RETURN_IF_ERROR(ReadFull(src, absl::MakeSpan(buf.data(), want), "slot image"));
    h.Update(absl::MakeConstSpan(buf.data(), want));
    if (pwrite(fd.get(), buf.data(), want, static_cast<off_t>(off)) != static_cast<ssize_t>(want)) {
      return absl::DataLossError(Errno("write " + dev));
    }
    off += want;
    const int pct = static_cast<int>(off * 100 / m.slot_size);
    if (pct / 25 > said) {
      said = pct / 25;
      Say(paths, opts.say, absl::StrFormat("writing slot %c: %d%% (%d MiB)", slot, pct, off >> 20));
    }
  }
  // Nothing may follow the slot image.
  uint8_t extra = 0;
  EV_ASSIGN_OR_RETURN(const size_t more, src.Read(absl::MakeSpan(&extra, 1)));
  if (more != 0) return absl::InvalidArgumentError("trailing bytes after the slot image");
  EV_RETURN_IF_ERROR(src.Finish());
  if (h.Finish() != m.slot_sha256) {
    return absl::DataLossError(absl::StrFormat(
        "the slot image's sha256 is not the one the signed manifest names; slot %c holds no "
        "release now, and GRUB was not told about it",
        slot));
  }
  if (fsync(fd.get()) != 0) return absl::DataLossError(Errno("fsync " + dev));
  // Read back from the disk, not the page cache.
  ioctl(fd.get(), BLKFLSBUF, 0);
  fd.Reset();
  UniqueFd rd(open(dev.c_str(), O_RDONLY | O_CLOEXEC));
  if (!rd.valid()) return absl::DataLossError(Errno("open " + dev));
  posix_fadvise(rd.get(), 0, 0, POSIX_FADV_DONTNEED);
  EV_ASSIGN_OR_RETURN(
      const bundle::Sha256 back,
      HashRange(m.slot_size, [&](uint64_t at, absl::Span<uint8_t> buf) -> absl::StatusOr<size_t> {
        const ssize_t n = pread(rd.get(), buf.data(), buf.size(), static_cast<off_t>(at));
        if (n <= 0) return absl::DataLossError(Errno("read back " + dev));
        return static_cast<size_t>(n);
      }));
  if (back != m.slot_sha256) {
    return absl::DataLossError(absl::StrFormat(
        "slot %c read back from the disk differs from what was written (a failing disk?)", slot));
  }
  Say(paths, opts.say,
      absl::StrFormat("slot %c written (%d bytes) and read back from %s: sha256 %s", slot,
                      m.slot_size, dev, bundle::Hex(m.slot_sha256)));
  return absl::OkStatus();
}

absl::Status UpdateLocked(const Paths& paths, const Options& opts, const std::string& source,
                          Json& last) {
  EV_ASSIGN_OR_RETURN(const AbView view, ReadAbView(paths));
  const Running& running = view.running;
  const grubenv::AbState& ab = view.ab;
  if (view.on_trial()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "slot %c is on trial; its health check commits it or rolls it back first", running.slot));
  }
  const char target = Other(running.slot);
  EV_ASSIGN_OR_RETURN(const std::string dev, FindPartition(paths, std::string("root-") + target));
  std::unique_ptr<Source> src;
  if (absl::StartsWith(source, "http://") || absl::StartsWith(source, "https://")) {
    EV_ASSIGN_OR_RETURN(src, UrlSource::Open(source, opts.max_bytes, opts.timeout_s));
  } else {
    EV_ASSIGN_OR_RETURN(src, FileSource::Open(source));
  }
  auto verified = Verify(paths, *src, running, dev);
  if (!verified.ok()) return verified.status();
  const bundle::Manifest& m = verified->manifest;
  last["version"] = m.version.text;
  last["slot"] = std::string(1, target);
  Say(paths, opts.say,
      absl::StrFormat("release %s (edgevisor %s) for %s verified: signed by a trusted key, "
                      "replaces %s; writing it into slot %c (%s)",
                      m.version.text, m.edgevisor, m.arch, running.version.text, target, dev));
  EV_RETURN_IF_ERROR(WriteSlot(paths, opts, *src, m, dev, target));
  mkdir(paths.state_dir.c_str(), 0755);
  const Json pending = {{"version", m.version.text},
                        {"slot", std::string(1, target)},
                        {"from_version", running.version.text},
                        {"from_slot", std::string(1, running.slot)},
                        {"trial_boots", opts.trial_boots},
                        {"written", UtcStamp()}};
  EV_RETURN_IF_ERROR(WriteDurable(paths.state_dir + "/pending.json", pending.dump(2) + "\n"));
  grubenv::AbState next = ab;
  next.slot = ab.slot;  // the committed slot stays what GRUB falls back to
  next.next_slot = target;
  next.next_tries = opts.trial_boots;
  EV_RETURN_IF_ERROR(view.store.Write(grubenv::WithAb(view.env, next)));
  Say(paths, opts.say,
      absl::StrFormat("grubenv written (one sector of %s at %d): next_slot=%c next_tries=%d, "
                      "slot=%c stays committed",
                      view.store.device(), view.store.offset(), target, opts.trial_boots,
                      next.slot));
  return absl::OkStatus();
}

}  // namespace

bool IsRefusal(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ||
         s.code() == absl::StatusCode::kPermissionDenied ||
         s.code() == absl::StatusCode::kFailedPrecondition;
}

absl::StatusOr<bundle::Manifest> VerifyBundleFile(const std::string& keys,
                                                  const std::string& file) {
  EV_ASSIGN_OR_RETURN(auto src, FileSource::Open(file));
  EV_ASSIGN_OR_RETURN(const Verified v, VerifySigned(keys, *src));
  EV_RETURN_IF_ERROR(VerifyPayload(*src, v));
  return v.manifest;
}

absl::Status Update(const Paths& paths, const Options& opts, const std::string& source) {
  // One update at a time (the periodic check and an operator's command). The periodic check
  // skips its turn when the lock is taken; an operator's command waits up to 30 s for it, the
  // time a periodic check takes to find nothing newer, so that the two do not collide.
  UniqueFd lock(open("/run/ev-appliance-update.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (lock.valid() && flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (opts.if_newer || std::chrono::steady_clock::now() >= give_up) {
      if (!opts.if_newer) Say(paths, opts.say, "FAILED: another update is running");
      return absl::UnavailableError("another update is running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  Json last = {{"source", source}};
  Say(paths, opts.say, "from " + source);
  absl::Status s = UpdateLocked(paths, opts, source, last);
  if (!s.ok()) {
    const bool refused = IsRefusal(s);
    if (opts.if_newer && s.code() == absl::StatusCode::kFailedPrecondition &&
        absl::StrContains(s.message(), "(a bundle may allow that")) {
      Say(paths, opts.say, absl::StrCat("up to date: ", s.message()));
      return absl::OkStatus();
    }
    Say(paths, opts.say, absl::StrCat(refused ? "REFUSED: " : "FAILED: ", s.message()));
    last["result"] = refused ? "refused" : "failed";
    last["reason"] = std::string(s.message());
    RecordLast(paths, last);
    return s;
  }
  last["result"] = "written";
  RecordLast(paths, last);
  if (opts.reboot) {
    Say(paths, opts.say, "rebooting into the trial");
    sync();
    execlp("reboot", "reboot", nullptr);
    return absl::InternalError(Errno("reboot"));
  }
  return absl::OkStatus();
}

// ---- boot time -------------------------------------------------------------------------------

absl::StatusOr<BootView> Reconcile(const Paths& paths,
                                   const std::function<void(const std::string&)>& say) {
  BootView v;
  EV_ASSIGN_OR_RETURN(const AbView view, ReadAbView(paths));
  const Running& running = view.running;
  v.running = running.slot;
  v.ab = view.ab;
  const std::string pending_path = paths.state_dir + "/pending.json";
  const std::optional<Json> pending = ReadJson(pending_path);
  if (view.on_trial()) {
    v.boot = Boot::kTrial;
    Say(paths, say,
        absl::StrFormat("trial boot of release %s in slot %c (%d boot(s) left after this one); "
                        "health check running",
                        running.version.text, v.running, std::max(v.ab.next_tries, 0)));
    return v;
  }
  v.boot = v.ab.slot == v.running ? Boot::kCommitted : Boot::kOther;
  if (pending) {
    const std::string slot = pending->value("slot", "");
    const std::string version = pending->value("version", "?");
    if (slot != std::string(1, v.running) && v.ab.next_slot == 0) {
      const std::string reason = absl::StrFormat(
          "release %s in slot %s never passed its health check within %d trial boot(s) (a "
          "kernel panic, a hang that the watchdog reset, or a power cut); GRUB went back to "
          "slot %c",
          version, slot, pending->value("trial_boots", 0), v.running);
      Say(paths, say, "ROLLED BACK: " + reason);
      RecordLast(
          paths,
          {{"result", "rolled-back"}, {"version", version}, {"slot", slot}, {"reason", reason}});
      unlink(pending_path.c_str());
    } else if (slot == std::string(1, v.running) && v.ab.slot == v.running) {
      unlink(pending_path.c_str());  // committed before the file could go
    }
  }
  if (v.boot == Boot::kOther) {
    Say(paths, say,
        absl::StrFormat("running slot %c, but slot %c is committed: GRUB's fallback entry booted "
                        "this one (slot %c did not start)",
                        v.running, v.ab.slot, v.ab.slot));
  }
  return v;
}

absl::StatusOr<bool> OnTrial(const Paths& paths) {
  EV_ASSIGN_OR_RETURN(const AbView view, ReadAbView(paths));
  return view.on_trial();
}

absl::Status Commit(const Paths& paths, const std::function<void(const std::string&)>& say) {
  EV_ASSIGN_OR_RETURN(const AbView view, ReadAbView(paths));
  const Running& running = view.running;
  grubenv::AbState ab;
  ab.slot = running.slot;
  EV_RETURN_IF_ERROR(view.store.Write(grubenv::WithAb(view.env, ab)));
  const std::string pending_path = paths.state_dir + "/pending.json";
  const std::optional<Json> pending = ReadJson(pending_path);
  RecordLast(paths, {{"result", "committed"},
                     {"version", running.version.text},
                     {"slot", std::string(1, running.slot)},
                     {"from_version", pending ? pending->value("from_version", "") : ""}});
  unlink(pending_path.c_str());
  Say(paths, say,
      absl::StrFormat("COMMITTED: release %s in slot %c passed its health check; grubenv slot=%c",
                      running.version.text, running.slot, running.slot));
  return absl::OkStatus();
}

absl::Status Rollback(const Paths& paths, const std::string& reason,
                      const std::function<void(const std::string&)>& say) {
  EV_ASSIGN_OR_RETURN(const AbView view, ReadAbView(paths));
  const Running& running = view.running;
  grubenv::AbState ab = view.ab;
  ab.next_slot = 0;
  EV_RETURN_IF_ERROR(view.store.Write(grubenv::WithAb(view.env, ab)));
  const std::string why = absl::StrFormat("release %s in slot %c failed its health check: %s",
                                          running.version.text, running.slot, reason);
  RecordLast(paths, {{"result", "rolled-back"},
                     {"version", running.version.text},
                     {"slot", std::string(1, running.slot)},
                     {"reason", why}});
  unlink((paths.state_dir + "/pending.json").c_str());
  Say(paths, say, absl::StrFormat("ROLLING BACK: %s; rebooting into slot %c", why, ab.slot));
  return absl::OkStatus();
}

// ---- status ----------------------------------------------------------------------------------

Json Status(const Paths& paths, const Json& vms) {
  Json s = Json::object();
  auto running = ReadRunning(paths);
  if (running.ok()) {
    s["running_slot"] = std::string(1, running->slot);
    s["version"] = running->version.text;
    s["release"] = running->release;
  } else {
    s["error"] = std::string(running.status().message());
  }
  auto store = GrubenvStore::Open(paths);
  auto env = store.ok() ? store->Read() : absl::StatusOr<grubenv::Env>(store.status());
  if (env.ok()) {
    const grubenv::AbState ab = grubenv::ReadAb(*env);
    s["committed_slot"] = std::string(1, ab.slot);
    s["trial"] = ab.next_slot ? Json{{"slot", std::string(1, ab.next_slot)},
                                     {"tries_left", std::max(ab.next_tries, 0)}}
                              : Json(nullptr);
  } else {
    s["grubenv_error"] = std::string(env.status().message());
  }
  s["pending"] = ReadJson(paths.state_dir + "/pending.json").value_or(Json(nullptr));
  s["last_update"] = ReadJson(paths.state_dir + "/last.json").value_or(Json(nullptr));
  s["vms"] = vms;
  return s;
}

std::string StatusText(const Json& s) {
  auto str = [&](const Json& j, const char* k) {
    return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>()
                                                              : std::string("-");
  };
  std::string out;
  out +=
      absl::StrFormat("running:   slot %s, release %s (edgevisor %s, %s)\n", str(s, "running_slot"),
                      str(s, "version"), str(s.value("release", Json::object()), "edgevisor"),
                      str(s.value("release", Json::object()), "kernel"));
  out += absl::StrFormat("committed: slot %s\n", str(s, "committed_slot"));
  const Json trial = s.value("trial", Json(nullptr));
  out += trial.is_object() ? absl::StrFormat("trial:     slot %s, %d boot(s) left\n",
                                             str(trial, "slot"), trial.value("tries_left", 0))
                           : std::string("trial:     none\n");
  const Json last = s.value("last_update", Json(nullptr));
  out += last.is_object()
             ? absl::StrFormat("last update: %s, release %s, slot %s, %s%s\n", str(last, "result"),
                               str(last, "version"), str(last, "slot"), str(last, "time"),
                               last.contains("reason") ? ": " + str(last, "reason") : "")
             : std::string("last update: none\n");
  const Json vms = s.value("vms", Json::object());
  for (const auto& [name, state] : vms.items()) {
    out += absl::StrFormat("vm %-12s %s\n", name,
                           state.is_string() ? state.get<std::string>() : state.dump());
  }
  return out;
}

}  // namespace edgevisor::appliance::update
