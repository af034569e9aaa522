#include "assign/version.h"

#include <vector>

namespace fulcrum::assign {

std::string padded_version_string(std::string_view version) {
  if (version.empty()) version = "0";
  if (version.front() == 'v') version.remove_prefix(1);
  if (const auto plus = version.find('+'); plus != std::string_view::npos) {
    version = version.substr(0, plus);
  }
  std::vector<std::string_view> parts;
  std::size_t begin = 0;
  for (std::size_t i = 0; i <= version.size(); ++i) {
    if (i == version.size() || version[i] == '.' || version[i] == '-') {
      parts.push_back(version.substr(begin, i - begin));
      begin = i + 1;
    }
  }
  if (parts.size() == 3) parts.push_back("~");
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '-';
    const auto part = parts[i];
    bool numeric = !part.empty();
    for (char c : part) numeric = numeric && c >= '0' && c <= '9';
    if (numeric && part.size() < 5) out.append(5 - part.size(), ' ');
    out += part;
  }
  return out;
}

std::size_t padded_version_into(std::string_view version, char* out, std::size_t capacity) {
  if (version.empty()) version = "0";
  if (version.front() == 'v') version.remove_prefix(1);
  if (const auto plus = version.find('+'); plus != std::string_view::npos) {
    version = version.substr(0, plus);
  }
  std::size_t parts = 1;
  for (char c : version) parts += (c == '.' || c == '-') ? 1 : 0;
  std::size_t length = 0;
  const auto put = [&](std::string_view text) {
    if (length + text.size() > capacity) return false;
    for (char c : text) out[length++] = c;
    return true;
  };
  std::size_t begin = 0;
  bool first = true;
  for (std::size_t i = 0; i <= version.size(); ++i) {
    if (i != version.size() && version[i] != '.' && version[i] != '-') continue;
    const auto part = version.substr(begin, i - begin);
    begin = i + 1;
    if (!first && !put("-")) return std::string_view::npos;
    first = false;
    bool numeric = !part.empty();
    for (char c : part) numeric = numeric && c >= '0' && c <= '9';
    if (numeric && part.size() < 5 && !put(std::string_view("     ", 5 - part.size()))) {
      return std::string_view::npos;
    }
    if (!put(part)) return std::string_view::npos;
  }
  if (parts == 3 && !put("-~")) return std::string_view::npos;
  return length;
}

int compare_with_padded(std::string_view version, std::string_view padded) {
  char buf[128];
  const std::size_t length = padded_version_into(version, buf, sizeof buf);
  if (length == std::string_view::npos) return padded_version_string(version).compare(padded);
  return std::string_view(buf, length).compare(padded);
}

int compare_versions(std::string_view a, std::string_view b) {
  return padded_version_string(a).compare(padded_version_string(b));
}

}  // namespace fulcrum::assign
