"""Builds and queries Debian's python3-hnswlib on the vectors Engram.AnnBench wrote, single-threaded.

usage: /usr/bin/python3 hnswlib_bench.py DIR DIMS N QUERIES K M EF_CONSTRUCTION EF[,EF...]
Reads DIR/data.f32 and DIR/queries.f32 (row-major float32, unit length), writes DIR/hnswlib_ef{EF}.i32
(QUERIES x K labels) and prints one JSON object: build seconds and, per ef, the best of three timed passes.
"""
import json
import sys
import time

import hnswlib
import numpy as np


def main():
    folder, dims, n, q, k, m, ef_c = sys.argv[1], *map(int, sys.argv[2:8])
    efs = [int(e) for e in sys.argv[8].split(",")]
    data = np.fromfile(f"{folder}/data.f32", dtype=np.float32).reshape(n, dims)
    queries = np.fromfile(f"{folder}/queries.f32", dtype=np.float32).reshape(q, dims)

    # 'ip' on unit vectors is cosine without hnswlib normalising (again) on every insert and query.
    index = hnswlib.Index(space="ip", dim=dims)
    index.init_index(max_elements=n, M=m, ef_construction=ef_c, random_seed=100)
    index.set_num_threads(1)
    start = time.perf_counter()
    index.add_items(data, np.arange(n), num_threads=1)
    build = time.perf_counter() - start

    result = {"build_seconds": build, "searches": []}
    for ef in efs:
        index.set_ef(ef)
        index.knn_query(queries, k=k, num_threads=1)  # warm-up, as the C# side gets
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            labels, _ = index.knn_query(queries, k=k, num_threads=1)
            best = min(best, time.perf_counter() - start)
        labels.astype(np.int32).tofile(f"{folder}/hnswlib_ef{ef}.i32")
        result["searches"].append({"ef": ef, "seconds": best})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
