#pragma once
// The seed generator's output: files named corpus/<target>/<name>.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace corral::fuzz {

class seed_writer {
 public:
  explicit seed_writer(std::filesystem::path root) : root_(std::move(root)) {}
  void write(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
    const auto dir = root_ / target;
    std::filesystem::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    ++count_;
  }
  [[nodiscard]] std::size_t count() const { return count_; }

 private:
  std::filesystem::path root_;
  std::size_t count_ = 0;
};

// The seeds of the wire message targets (seed_wire.cpp).
void wire_seeds(seed_writer& out);

}  // namespace corral::fuzz
