#pragma once
// The sweep's output file: one JSON result a line (client/sweep/verdict.hpp), and what resume
// reads from it.
//
// Each line is one write(2) to a file opened O_APPEND, made as its result arrives: a crash of
// the sweep loses no line already written (the kernel has it; it is not fsync'ed).
//
// Resume: the ids already in the output file are not run again. A partial last line (a crash
// mid-write) is cut off first; a whole one that only lacks its newline gets it.
#include <cstdint>
#include <istream>
#include <mutex>
#include <string>
#include <unordered_map>

namespace corral::sweep {

// What an existing output file holds.
struct earlier_result {
  bool passed = false;
  bool invalid = false;
};
struct out_file_state {
  std::unordered_map<std::string, earlier_result> finished;  // by id
  uint64_t complete_bytes = 0;       // up to the end of its last complete line
  bool partial_tail = false;         // bytes after that: a line cut by a crash
  bool needs_newline = false;        // the last line is whole but lacks its '\n'
  std::size_t unreadable_lines = 0;  // not JSON objects with a string id: ignored
};
[[nodiscard]] out_file_state scan_out_file(std::istream& in);

// The output file, appended to by any thread; one write(2) per line.
class out_file {
 public:
  out_file() = default;
  out_file(const out_file&) = delete;
  out_file& operator=(const out_file&) = delete;
  ~out_file();
  // Opens (creates) it for appending, after cutting the partial last line `earlier` found and
  // ending a last line that lacks its newline. False with *why.
  [[nodiscard]] bool open(const std::string& path, const out_file_state& earlier, std::string* why);
  // One whole line; false (errno says why) when it could not be written.
  [[nodiscard]] bool append(const std::string& line);

 private:
  int fd_ = -1;
  std::mutex mu_;
};

}  // namespace corral::sweep
