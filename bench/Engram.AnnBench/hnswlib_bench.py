"""Builds Debian's python3-hnswlib on the vectors Engram.AnnBench wrote and times query passes, single-threaded.

usage: /usr/bin/python3 hnswlib_bench.py DIR DIMS N QUERIES K M EF_CONSTRUCTION
Reads DIR/data.f32 and DIR/queries.f32 (row-major float32, unit length), builds, prints {"build_seconds": S};
then for every stdin line "ef E" runs one timed pass over the queries, writes DIR/python_ef{E}.i32
(QUERIES x K labels) and prints {"ef": E, "seconds": S}. The same protocol as hnswlib_native.cpp, so that
Engram.AnnBench can alternate the contenders' passes.
"""
import json
import sys
import time

import hnswlib
import numpy as np


def main():
    folder, dims, n, q, k, m, ef_c = sys.argv[1], *map(int, sys.argv[2:8])
    data = np.fromfile(f"{folder}/data.f32", dtype=np.float32).reshape(n, dims)
    queries = np.fromfile(f"{folder}/queries.f32", dtype=np.float32).reshape(q, dims)

    # 'ip' on unit vectors is cosine without hnswlib normalising (again) on every insert and query.
    index = hnswlib.Index(space="ip", dim=dims)
    index.init_index(max_elements=n, M=m, ef_construction=ef_c, random_seed=100)
    index.set_num_threads(1)
    start = time.perf_counter()
    index.add_items(data, np.arange(n), num_threads=1)
    print(json.dumps({"build_seconds": time.perf_counter() - start}), flush=True)

    for line in sys.stdin:
        command, value = line.split()
        if command != "ef":
            break
        ef = int(value)
        index.set_ef(ef)
        start = time.perf_counter()
        labels, _ = index.knn_query(queries, k=k, num_threads=1)
        seconds = time.perf_counter() - start
        labels.astype(np.int32).tofile(f"{folder}/python_ef{ef}.i32")
        print(json.dumps({"ef": ef, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
