"""Several huge-dimension uploads at once keep the process's memory bounded: the ones above the pixel
cap are refused before decoding, the others are decoded one at a time and shrunk before any copy.

Measured in a fresh process (its peak resident memory, `ru_maxrss`), with four uploads of each kind
arriving on four threads at once, as the demo's handlers and API calls would.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from llava_vitsplit.serve.image_input import MAX_DECODED_PIXELS

REPO_ROOT = Path(__file__).resolve().parents[2]
PEAK_BUDGET_MB = 300  # one decode under the cap is at most 120 MB of RGB

MEASURE = r"""
import json, resource, sys, threading
from llava_vitsplit.serve.errors import ChatInputError
from llava_vitsplit.serve.image_input import read_image

paths = sys.argv[1:]
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = [None] * len(paths)

def read(index):
    try:
        results[index] = list(read_image(paths[index]).image.size)
    except ChatInputError as error:
        results[index] = str(error)

threads = [threading.Thread(target=read, args=(index,)) for index in range(len(paths))]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (peak - baseline) / 1024, "results": results}))
"""


def write_blank_png(path: Path, width: int, height: int) -> Path:
    """A black RGB PNG written row by row: under 2 MB on disk, width*height*3 bytes decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row = zlib.compressobj(1), b"\0" * (1 + 3 * width)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        for _ in range(height):
            if data := compressor.compress(row):
                handle.write(chunk(b"IDAT", data))
        handle.write(chunk(b"IDAT", compressor.flush()) + chunk(b"IEND", b""))
    return path


def test_huge_uploads_at_once_keep_memory_bounded(tmp_path):
    huge = write_blank_png(tmp_path / "huge.png", 12000, 12000)  # 144 megapixels: 432 MB decoded
    large = write_blank_png(tmp_path / "large.png", 6000, 6000)  # 36 megapixels, under the cap
    assert huge.stat().st_size < 3_000_000 and 6000 * 6000 <= MAX_DECODED_PIXELS < 12000 * 12000
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, *[str(huge)] * 4, *[str(large)] * 4],
        capture_output=True, text=True, cwd=REPO_ROOT, env={"PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert measured.returncode == 0, measured.stderr[-2000:]
    report = json.loads(measured.stdout.splitlines()[-1])
    refused, accepted = report["results"][:4], report["results"][4:]
    assert all("huge.png is 12000x12000 pixels (144 megapixels), more than this demo decodes" in r for r in refused)
    assert accepted == [[1024, 1024]] * 4
    assert report["growth_mb"] < PEAK_BUDGET_MB, report
