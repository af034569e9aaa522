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

int compare_versions(std::string_view a, std::string_view b) {
  return padded_version_string(a).compare(padded_version_string(b));
}

}  // namespace fulcrum::assign
