// hnswlib (Debian's libhnswlib-dev headers) compiled for this machine: g++ -O3 -march=native (AVX2/FMA where the
// CPU has them; Debian's python3-hnswlib is built for baseline x86-64). Same protocol as hnswlib_bench.py:
//   hnswlib_native DIR DIMS N QUERIES K M EF_CONSTRUCTION
// builds from DIR/data.f32 on one thread, prints {"build_seconds":S}, then for every stdin line "ef E" runs one
// pass over DIR/queries.f32 (one thread), writes DIR/native_ef{E}.i32 (QUERIES x K labels) and prints
// {"ef":E,"seconds":S}. Engram.AnnBench drives it so that the contenders' passes alternate.
#include <hnswlib/hnswlib.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

static std::vector<float> read_floats(const std::string& path, size_t count) {
    std::vector<float> values(count);
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(count * sizeof(float)));
    if (!in) {
        std::fprintf(stderr, "cannot read %zu floats from %s\n", count, path.c_str());
        std::exit(2);
    }
    return values;
}

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr, "usage: %s DIR DIMS N QUERIES K M EF_CONSTRUCTION\n", argv[0]);
        return 2;
    }
    const std::string folder = argv[1];
    const size_t dims = std::stoul(argv[2]), n = std::stoul(argv[3]), q = std::stoul(argv[4]), k = std::stoul(argv[5]);
    const size_t m = std::stoul(argv[6]), ef_construction = std::stoul(argv[7]);
    const auto data = read_floats(folder + "/data.f32", n * dims);
    const auto queries = read_floats(folder + "/queries.f32", q * dims);

    // Inner product on unit vectors = cosine, as in the Python script (space 'ip').
    hnswlib::InnerProductSpace space(dims);
    hnswlib::HierarchicalNSW<float> index(&space, n, m, ef_construction, 100);
    auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < n; i++) {
        index.addPoint(data.data() + i * dims, i);
    }
    const double build = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"build_seconds\":%.6f}\n", build);
    std::fflush(stdout);

    std::vector<int> labels(q * k);
    std::string command;
    size_t ef = 0;
    while (std::cin >> command >> ef) {
        if (command != "ef") {
            break;
        }
        index.setEf(ef);
        start = std::chrono::steady_clock::now();
        for (size_t i = 0; i < q; i++) {
            auto result = index.searchKnn(queries.data() + i * dims, k);
            for (size_t j = k; j-- > 0;) {  // the queue pops the farthest first
                labels[i * k + j] = result.empty() ? -1 : static_cast<int>(result.top().second);
                if (!result.empty()) {
                    result.pop();
                }
            }
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::ofstream out(folder + "/native_ef" + std::to_string(ef) + ".i32", std::ios::binary);
        out.write(reinterpret_cast<const char*>(labels.data()), static_cast<std::streamsize>(labels.size() * sizeof(int)));
        out.close();
        std::printf("{\"ef\":%zu,\"seconds\":%.6f}\n", ef, seconds);
        std::fflush(stdout);
    }
    return 0;
}
