#!/usr/bin/env python3
"""Per episode of a cheetah.run replay buffer (runs/<name>/checkpoints/buffer.bin): the return,
the fraction of steps the cheetah spent on its back (|rooty| > pi/2; rooty is observation 1,
qpos[2]) and its mean forward speed (observation 8, the root's x velocity).

    .venv/bin/python scripts/cheetah_flips.py runs/planet_cheetah_run_100k_ensemble

Reads the buffer format written by `dcem::replay::ReplayBuffer::save` (magic, obs/action
widths and episode count as u64, then per episode its length and its observations, actions and
rewards as little-endian f32, then a CRC32) and checks the checksum.
"""
import struct
import sys
import zlib
from pathlib import Path

import numpy as np


def episodes(path):
    data = Path(path).read_bytes()
    body, crc = data[:-4], struct.unpack("<I", data[-4:])[0]
    if zlib.crc32(body) != crc:
        sys.exit(f"{path}: checksum mismatch (a damaged or partly written buffer)")
    od, ad, n = struct.unpack("<3Q", body[8:32])
    if od != 17 or ad != 6:
        sys.exit(f"{path}: observations {od} and actions {ad} wide, not cheetah.run's 17 and 6")
    at = 32
    for _ in range(n):
        (steps,) = struct.unpack("<Q", body[at : at + 8])
        at += 8
        obs = np.frombuffer(body, "<f4", steps * od, at).reshape(steps, od)
        at += 4 * steps * od + 4 * steps * ad
        rewards = np.frombuffer(body, "<f4", steps, at)
        at += 4 * steps
        yield obs, rewards


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run = Path(sys.argv[1])
    path = run / "checkpoints" / "buffer.bin" if run.is_dir() else run
    print("| episode | return | on its back | mean forward speed |")
    print("|---|---|---|---|")
    for i, (obs, rewards) in enumerate(episodes(path), 1):
        back = float((np.abs(obs[:, 1]) > np.pi / 2).mean())
        print(f"| {i} | {rewards.sum():.1f} | {back:.0%} | {obs[:, 8].mean():.2f} |")


if __name__ == "__main__":
    main()
