// For tests that check a binary we generate through the text a standard tool prints for it
// (iasl -d for ACPI tables, dtc for device trees): a scratch directory, and the text with its
// whitespace runs folded to one space so that assertions do not depend on the tool's layout.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace edgevisor::testing {

class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/edgevisor_test.XXXXXX";
    EXPECT_NE(mkdtemp(tmpl), nullptr);
    path_ = tmpl;
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  void Write(const std::string& name, const std::vector<uint8_t>& data) const {
    std::ofstream(File(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data()),
               static_cast<std::streamsize>(data.size()));
  }
  std::string Read(const std::string& name) const {
    std::ifstream f(File(name));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

 private:
  std::string path_;
};

// `text` with every whitespace run folded to one space, and with "//" comments (to the end of
// their line) dropped when `drop_line_comments`.
inline std::string FoldWhitespace(const std::string& text, bool drop_line_comments = false) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (drop_line_comments && text.compare(i, 2, "//") == 0) {
      while (i < text.size() && text[i] != '\n') ++i;
      if (i >= text.size()) break;
    }
    const bool space = std::isspace(static_cast<unsigned char>(text[i]));
    if (space && (out.empty() || out.back() == ' ')) continue;
    out.push_back(space ? ' ' : text[i]);
  }
  return out;
}

}  // namespace edgevisor::testing
