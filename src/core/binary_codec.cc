#include "core/binary_codec.h"

#include <bit>
#include <cstring>

namespace fulcrum {

static_assert(std::endian::native == std::endian::little,
              "binary_codec copies little-endian machine words");

void ByteWriter::u32(std::uint32_t value) {
  bytes_.append(reinterpret_cast<const char*>(&value), 4);
}
void ByteWriter::i64(std::int64_t value) {
  bytes_.append(reinterpret_cast<const char*>(&value), 8);
}
void ByteWriter::f64(double value) { bytes_.append(reinterpret_cast<const char*>(&value), 8); }
void ByteWriter::f32(float value) { bytes_.append(reinterpret_cast<const char*>(&value), 4); }
void ByteWriter::str(std::string_view value) {
  u32(static_cast<std::uint32_t>(value.size()));
  bytes_.append(value);
}
void ByteWriter::count(std::size_t n) { i64(static_cast<std::int64_t>(n)); }
void ByteWriter::f64_array(const double* values, std::size_t n) {
  count(n);
  bytes_.append(reinterpret_cast<const char*>(values), n * sizeof(double));
}
void ByteWriter::f32_array(const float* values, std::size_t n) {
  count(n);
  bytes_.append(reinterpret_cast<const char*>(values), n * sizeof(float));
}
void ByteWriter::u8_array(const std::uint8_t* values, std::size_t n) {
  count(n);
  bytes_.append(reinterpret_cast<const char*>(values), n);
}
void ByteWriter::u16_array(const std::uint16_t* values, std::size_t n) {
  count(n);
  bytes_.append(reinterpret_cast<const char*>(values), n * sizeof(std::uint16_t));
}

bool ByteReader::take(void* out, std::size_t n) {
  if (!ok() || bytes_.size() - offset_ < n) {
    fail("truncated at byte " + std::to_string(offset_));
    std::memset(out, 0, n);
    return false;
  }
  std::memcpy(out, bytes_.data() + offset_, n);
  offset_ += n;
  return true;
}

void ByteReader::fail(std::string reason) {
  if (error_.empty()) error_ = std::move(reason);
}

std::uint8_t ByteReader::u8() {
  std::uint8_t value;
  take(&value, 1);
  return value;
}
std::uint32_t ByteReader::u32() {
  std::uint32_t value;
  take(&value, 4);
  return value;
}
std::int64_t ByteReader::i64() {
  std::int64_t value;
  take(&value, 8);
  return value;
}
double ByteReader::f64() {
  double value;
  take(&value, 8);
  return value;
}
float ByteReader::f32() {
  float value;
  take(&value, 4);
  return value;
}
std::string ByteReader::str() {
  const std::uint32_t size = u32();
  if (!ok() || bytes_.size() - offset_ < size) {
    fail("string of " + std::to_string(size) + " bytes past the end");
    return {};
  }
  std::string value(bytes_.substr(offset_, size));
  offset_ += size;
  return value;
}

std::size_t ByteReader::count(std::size_t element_size, std::size_t expected) {
  const std::int64_t stored = i64();
  if (!ok()) return 0;
  // The count is checked against what is left before anything is allocated.
  if (stored < 0 || static_cast<std::uint64_t>(stored) > (bytes_.size() - offset_) / element_size) {
    fail("array of " + std::to_string(stored) + " elements past the end");
    return 0;
  }
  if (expected != SIZE_MAX && static_cast<std::size_t>(stored) != expected) {
    fail("array of " + std::to_string(stored) + " elements, expected " + std::to_string(expected));
    return 0;
  }
  return static_cast<std::size_t>(stored);
}

std::vector<double> ByteReader::f64_vector(std::size_t expected) {
  std::vector<double> values(count(sizeof(double), expected));
  if (!values.empty()) take(values.data(), values.size() * sizeof(double));
  return values;
}
std::vector<float> ByteReader::f32_vector(std::size_t expected) {
  std::vector<float> values(count(sizeof(float), expected));
  if (!values.empty()) take(values.data(), values.size() * sizeof(float));
  return values;
}
std::vector<std::uint8_t> ByteReader::u8_vector(std::size_t expected) {
  std::vector<std::uint8_t> values(count(1, expected));
  if (!values.empty()) take(values.data(), values.size());
  return values;
}

std::vector<std::uint16_t> ByteReader::u16_vector(std::size_t expected) {
  std::vector<std::uint16_t> values(count(sizeof(std::uint16_t), expected));
  if (!values.empty()) take(values.data(), values.size() * sizeof(std::uint16_t));
  return values;
}

Status ByteReader::finish() const {
  if (!ok()) return invalid_argument("malformed model payload: " + error_);
  if (!at_end()) {
    return invalid_argument("malformed model payload: " + std::to_string(bytes_.size() - offset_) +
                            " bytes after the end");
  }
  return Status::ok();
}

}  // namespace fulcrum
