// A real SQLite store in a fresh temp directory per test (removed afterwards), for the test
// binaries of every engine.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "store/store.h"

namespace fulcrum::testing_support {

class SqliteStoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = std::filesystem::temp_directory_path() /
                 ("fulcrum_store_" + std::to_string(::getpid()) + "_" + info->test_suite_name() +
                  "_" + info->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    auto opened = open_store((directory_ / "store.db").string());
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    store_ = std::move(*opened);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(directory_);
  }
  Store& store() { return *store_; }

  std::filesystem::path directory_;
  std::unique_ptr<Store> store_;
};

}  // namespace fulcrum::testing_support
