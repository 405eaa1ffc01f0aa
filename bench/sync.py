"""Benchmark: pm_dvr's Azure sync against a plain azure-storage-blob upload, on a real Azurite.

A 1 GiB event (8 clips of 128 MiB of random data) is uploaded in alternating rounds through
(a) pm_dvr's SyncEngine + AzureBlobTarget (file MD5, verify, skip checks; --validate-blocks
adds a per-block MD5 the service checks) and
(b) the anchor: `ContainerClient.upload_blob(data=file, max_concurrency=4)` per file on the same
session, with the SDK's defaults (4 MiB blocks, set explicitly; 64 MiB single-put limit, so the
128 MiB clips go as blocks) while pm_dvr uses its own (AzureTuning: 8 MiB blocks, 3 in flight,
two files at once), and, for context, (c) anchor_md5: the same after hashing the file first,
the work a plain SDK user needs for a checkable MD5. We report throughput, the ratio
pm_dvr/anchor (and pm_dvr/anchor_md5), and pm_dvr's peak extra RSS over the process baseline
(sampled from /proc/self/status every 50 ms in a thread).

Run from the repo root: .venv/bin/python bench/sync.py [--size-mb 1024] [--rounds 2]
The last line printed is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
from pathlib import Path
import random
import shutil
import sys
import threading
import time

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from azure.core.pipeline.transport import AioHttpTransport  # noqa: E402
from azure.storage.blob import ContentSettings  # noqa: E402
from azure.storage.blob.aio import BlobServiceClient  # noqa: E402

from custom_components.pm_dvr.core.sync import (  # noqa: E402
    AzureBlobConfig,
    AzureTuning,
    JobResult,
    SyncEngine,
    SyncQueue,
    TargetSpec,
    create_azure_target,
    file_md5,
)
from tests.rig.azurite import Azurite  # noqa: E402

MIB = 1024 * 1024
OUT = ROOT / "bench" / "out" / "sync"
EVENT_ID = "bench-event"
TUNING = AzureTuning()  # the product's defaults
METHODS = ("pm_dvr", "anchor", "anchor_md5")
ANCHOR_BLOCK_SIZE = 4 * MIB  # the SDK's default max_block_size


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Samples RSS every 50 ms in a thread and keeps the peak."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def make_event(storage: Path, size_mb: int, clips: int) -> list[Path]:
    """Write the event: `clips` files of random data summing to size_mb, plus event.json."""
    event_dir = storage / "events" / EVENT_ID
    if event_dir.exists():
        shutil.rmtree(event_dir)
    rng = random.Random(1234)
    per_clip = size_mb * MIB // clips
    files = []
    for index in range(clips):
        camera = f"cam{index % 4}"
        path = event_dir / camera / f"20260101-0000{index:02d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            left = per_clip
            while left:
                chunk = min(left, 8 * MIB)
                handle.write(rng.randbytes(chunk))
                left -= chunk
        files.append(path)
    meta = event_dir / "event.json"
    meta.write_text(json.dumps({"id": EVENT_ID, "label": "person"}))
    files.append(meta)
    return files


async def drop_container(service: BlobServiceClient, name: str) -> None:
    await service.delete_container(name)


async def run_pm_dvr(
    server: Azurite, session: aiohttp.ClientSession, storage: Path, container: str
) -> tuple[float, int, int]:
    """Upload the event through the engine; returns seconds, bytes and peak extra RSS."""
    config = AzureBlobConfig(server.connection_string, None, None, container)
    target = await create_azure_target(config, session, tuning=TUNING)
    await target.validate()
    finished = asyncio.Event()
    results: list[JobResult] = []

    def done(result: JobResult) -> None:
        results.append(result)
        finished.set()

    engine = SyncEngine(storage, SyncQueue(), [TargetSpec("bench", target)], on_job_finished=done)
    gc.collect()
    baseline = rss_bytes()
    with RssSampler() as sampler:
        started = time.perf_counter()
        engine.start()
        await engine.enqueue_event(EVENT_ID)
        await finished.wait()
        seconds = time.perf_counter() - started
    await engine.close()
    [result] = results
    if not result.ok:
        raise RuntimeError(f"pm_dvr upload failed: {result.error}")
    return seconds, result.bytes_uploaded, sampler.peak - baseline


async def run_anchor(
    service: BlobServiceClient, files: list[Path], container: str, with_md5: bool = False
) -> tuple[float, int, int]:
    """Upload the same files with the SDK's own upload_blob; returns seconds, bytes, extra RSS.

    with_md5: what a plain SDK user must do to get a checkable MD5 on a block blob: hash the
    file first (in a thread), then pass it in ContentSettings (the same work pm_dvr does).
    """
    client = service.get_container_client(container)
    await client.create_container()
    gc.collect()
    baseline = rss_bytes()
    total = 0
    events_root = files[0].parents[2]  # blob names as pm_dvr makes them: <event>/<camera>/<clip>
    with RssSampler() as sampler:
        started = time.perf_counter()
        for path in files:
            name = path.relative_to(events_root).as_posix()
            settings = None
            if with_md5:
                _, md5 = await asyncio.to_thread(file_md5, path)
                settings = ContentSettings(content_md5=bytearray(md5))
            with path.open("rb") as data:
                await client.upload_blob(
                    name, data, overwrite=True, max_concurrency=4, content_settings=settings
                )
            total += path.stat().st_size
        seconds = time.perf_counter() - started
    return seconds, total, sampler.peak - baseline


async def main(size_mb: int, rounds: int, clips: int, keep: bool) -> dict[str, float]:
    storage = OUT / "storage"
    print(f"writing a {size_mb} MiB event in {clips} clips under {storage} ...", flush=True)
    files = make_event(storage, size_mb, clips)
    rows: list[tuple[int, str, float, int, int]] = []
    # In-memory Azurite frees deleted blobs only at its periodic GC: room for every round.
    server = Azurite(memory_limit_mb=size_mb * (len(METHODS) * rounds + 1) + 1024)
    server.start()
    try:
        async with aiohttp.ClientSession() as session:
            service = BlobServiceClient.from_connection_string(
                server.connection_string,
                transport=AioHttpTransport(session=session, session_owner=False),
                max_block_size=ANCHOR_BLOCK_SIZE,
            )
            async with service:
                # Warm-up, not measured: connections, Azurite's JIT and first allocations.
                await run_anchor(service, files[:1], "warmupanchor")
                await drop_container(service, "warmupanchor")
                for index in range(1, rounds + 1):
                    # Alternate who goes first, so drift in machine load hits both alike.
                    order = METHODS if index % 2 else METHODS[::-1]
                    for method in order:
                        container = f"{method.replace('_', '')}{index}"
                        if method == "pm_dvr":
                            measured = await run_pm_dvr(server, session, storage, container)
                        else:
                            with_md5 = method == "anchor_md5"
                            measured = await run_anchor(service, files, container, with_md5)
                        rows.append((index, method, *measured))
                        await drop_container(service, container)
    finally:
        server.close()
        if not keep:
            shutil.rmtree(OUT, ignore_errors=True)

    print(f"\n{'round':>5} {'method':<10} {'seconds':>8} {'MB/s':>8} {'peak extra MB':>14}")
    for index, method, secs, size, extra in rows:
        print(
            f"{index:>5} {method:<10} {secs:>8.2f} {size / MIB / secs:>8.1f} {extra / MIB:>14.1f}"
        )

    def rate(method: str) -> float:
        picked = [(s, b) for _, m, s, b, _ in rows if m == method]
        return sum(b for _, b in picked) / MIB / sum(s for s, _ in picked)

    pm_rate, anchor_rate, anchor_md5_rate = rate("pm_dvr"), rate("anchor"), rate("anchor_md5")
    ratio = pm_rate / anchor_rate
    peak = max(e for _, m, _, _, e in rows if m == "pm_dvr") / MIB
    anchor_peak = max(e for _, m, _, _, e in rows if m != "pm_dvr") / MIB
    print(f"\npm_dvr {pm_rate:.1f} MB/s, anchor {anchor_rate:.1f} MB/s, ratio {ratio:.3f}")
    print(
        f"anchor_md5 (SDK + the same file MD5) {anchor_md5_rate:.1f} MB/s,"
        f" pm_dvr / anchor_md5 {pm_rate / anchor_md5_rate:.3f}"
    )
    print(f"pm_dvr peak extra memory {peak:.1f} MB (target < 64), anchor {anchor_peak:.1f} MB")
    return {
        "throughput_ratio": round(ratio, 3),
        "peak_extra_mb": round(peak, 1),
        "pm_dvr_mb_s": round(pm_rate, 1),
        "anchor_mb_s": round(anchor_rate, 1),
        "anchor_md5_mb_s": round(anchor_md5_rate, 1),
        "throughput_ratio_vs_anchor_md5": round(pm_rate / anchor_md5_rate, 3),
        "anchor_peak_extra_mb": round(anchor_peak, 1),
        "size_mb": size_mb,
        "rounds": rounds,
        "validate_blocks": TUNING.validate_blocks,
        "pm_dvr_block_mb": TUNING.block_size // MIB,
        "pm_dvr_max_concurrency": TUNING.max_concurrency,
        "anchor_block_mb": ANCHOR_BLOCK_SIZE // MIB,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the event files in bench/out")
    parser.add_argument(
        "--validate-blocks", action="store_true", help="also send per-block MD5 (AzureTuning)"
    )
    args = parser.parse_args()
    if args.validate_blocks:
        TUNING = AzureTuning(validate_blocks=True)
    result = asyncio.run(main(args.size_mb, args.rounds, args.clips, args.keep))
    print("RESULT " + json.dumps(result))
