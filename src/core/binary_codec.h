// A small little-endian binary format for serialised models: fixed-width integers, IEEE-754
// doubles and floats copied bit for bit (so a decoded model scores exactly as the encoded
// one), and length-prefixed strings and arrays. The reader never reads past its input: a
// short or malformed input sets an error and every later read returns zeros, so a decoder
// reads its whole layout and checks ok() once at the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fulcrum {

class ByteWriter {
 public:
  void u8(std::uint8_t value) { bytes_.push_back(static_cast<char>(value)); }
  void u32(std::uint32_t value);
  void i64(std::int64_t value);
  void f64(double value);
  void f32(float value);
  void str(std::string_view value);  // u32 length + bytes
  // Raw arrays (u64 count + elements); Eigen storage goes through these.
  void f64_array(const double* values, std::size_t count);
  void f32_array(const float* values, std::size_t count);
  void u8_array(const std::uint8_t* values, std::size_t count);
  void u16_array(const std::uint16_t* values, std::size_t count);
  void f64_vector(const std::vector<double>& values) { f64_array(values.data(), values.size()); }
  void f32_vector(const std::vector<float>& values) { f32_array(values.data(), values.size()); }
  const std::string& bytes() const { return bytes_; }
  std::string take() { return std::move(bytes_); }

 private:
  void count(std::size_t n);
  std::string bytes_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  std::uint8_t u8();
  std::uint32_t u32();
  std::int64_t i64();
  double f64();
  float f32();
  std::string str();
  // Arrays: the element count read, then `out` resized and filled. `expected` (when not
  // SIZE_MAX) must equal the stored count, else the reader fails.
  std::vector<double> f64_vector(std::size_t expected = SIZE_MAX);
  std::vector<float> f32_vector(std::size_t expected = SIZE_MAX);
  std::vector<std::uint8_t> u8_vector(std::size_t expected = SIZE_MAX);
  std::vector<std::uint16_t> u16_vector(std::size_t expected = SIZE_MAX);
  // Fails the reader (e.g. a value out of range); the first reason is kept.
  void fail(std::string reason);
  bool ok() const { return error_.empty(); }
  bool at_end() const { return offset_ == bytes_.size(); }
  // OK when every read succeeded and the whole input was read; else kInvalidArgument.
  Status finish() const;

 private:
  bool take(void* out, std::size_t n);
  std::size_t count(std::size_t element_size, std::size_t expected);
  std::string_view bytes_;
  std::size_t offset_ = 0;
  std::string error_;
};

}  // namespace fulcrum
