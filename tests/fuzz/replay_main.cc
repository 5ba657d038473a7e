// Replays a fuzz corpus through a fuzz target's LLVMFuzzerTestOneInput with the regular (gcc)
// build, so every ./test.sh runs the same entry points libFuzzer explores (tests/fuzz/README.md).
// Arguments: corpus files or folders. A crash or sanitizer report fails the test; so does an
// empty corpus (a replay of nothing proves nothing).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else if (std::filesystem::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::cerr << "replay: " << p << " does not exist\n";
      return 2;
    }
  }
  if (files.empty()) {
    std::cerr << "replay: the corpus is empty\n";
    return 2;
  }
  size_t bytes = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    const std::string data = s.str();
    bytes += data.size();
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  std::cout << "replayed " << files.size() << " inputs (" << bytes << " bytes)\n";
  return 0;
}
