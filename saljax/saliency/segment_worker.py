"""XRAI segments in a separate Python process (``python -m saljax.saliency.segment_worker``).

Host work (scikit-image) that holds the GIL; a study starts it (:class:`SegmentsProcess`) before
training so that it runs beside the training threads. A plain subprocess rather than
``multiprocessing``: spawn would re-import the caller's main module, which re-runs an unguarded
user script.

    python -m saljax.saliency.segment_worker IN.npy OUT.npz CHUNK

reads model inputs [N, H, W, C] float32 from IN.npy (N a multiple of CHUNK) and writes, for each
chunk c, the arrays ``atom_id_c``, ``membership_c`` and ``sizes_c`` of its ``Segments``.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

from saljax import files


def read(path: str, n_chunks: int) -> list:
    """The worker's output as ``[Segments]``, one per chunk."""
    from saljax.saliency.xrai_regions import Segments
    with np.load(path, allow_pickle=False) as f:
        return [Segments(f[f"atom_id_{c}"], f[f"membership_{c}"], f[f"sizes_{c}"])
                for c in range(n_chunks)]


def chunked(images, chunk: int, progress: bool = False) -> list:
    """``[Segments]`` of each chunk of ``chunk`` model inputs [N, H, W, C] (N a multiple of
    ``chunk``): what the worker computes, and a study's fallback when the worker fails."""
    from tqdm.auto import tqdm

    from saljax.saliency.xrai_regions import segments
    return [segments(images[c * chunk:(c + 1) * chunk])
            for c in tqdm(range(len(images) // chunk), desc="xrai segments",
                          disable=not progress, mininterval=2.0)]


_LIVE: set = set()


def close_all() -> None:
    """Stop every worker this process started and remove their temporary folders (on exit,
    on an error, on Ctrl-C)."""
    for process in list(_LIVE):
        process.close()


atexit.register(close_all)


class SegmentsProcess:
    """The XRAI segments of model inputs [N, H, W, C] (N a multiple of ``chunk``), computed by a
    worker process started here; :meth:`result` waits for them. If the worker fails, ``result``
    computes them in this process, with a warning naming the worker's error. :meth:`close` (or
    :func:`close_all`, also run at exit) stops the worker and removes its temporary folder; a
    worker whose parent died stops by itself."""

    def __init__(self, images, chunk: int, progress: bool = True):
        self.images, self.chunk, self.progress = np.asarray(images, np.float32), chunk, progress
        self.n_chunks = len(self.images) // chunk
        self._tmp = tempfile.mkdtemp(prefix="saljax-xrai-")
        src = os.path.join(self._tmp, "images.npy")
        self._dst = os.path.join(self._tmp, "segments.npz")
        np.save(src, self.images)
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "saljax.saliency.segment_worker", src, self._dst, str(chunk)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._lock, self._done = threading.Lock(), None
        _LIVE.add(self)

    def close(self) -> None:
        if self._worker.poll() is None:
            self._worker.kill()
            self._worker.wait()
        if self._worker.stderr is not None:
            self._worker.stderr.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
        _LIVE.discard(self)

    def result(self) -> list:
        """``[Segments]`` per chunk, padded to one shape (one compiled XRAI program)."""
        from saljax.saliency.xrai_regions import pad_segments
        with self._lock:
            if self._done is None:
                _, err = self._worker.communicate()
                if self._worker.returncode == 0:
                    segments = read(self._dst, self.n_chunks)
                else:
                    lines = err.decode(errors="replace").strip().splitlines()
                    why = lines[-1] if lines else f"exit status {self._worker.returncode}"
                    warnings.warn(f"the XRAI segments worker failed ({why}); computing the "
                                  "segments in this process")
                    segments = chunked(self.images, self.chunk, self.progress)
                self.close()
                k = max(seg.membership.shape[1] for seg in segments)
                a = max(seg.membership.shape[2] for seg in segments)
                self._done = [pad_segments(seg, k, a) for seg in segments]
            return self._done


def _exit_with_parent(tmp: str) -> None:
    """Stop (and remove the parent's temporary folder) when the parent process is gone: a
    killed study leaves no worker running."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        shutil.rmtree(tmp, ignore_errors=True)
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def main(argv) -> int:
    src, dst, chunk = argv[0], argv[1], int(argv[2])
    _exit_with_parent(os.path.dirname(src))
    out = {}
    for c, seg in enumerate(chunked(np.load(src, allow_pickle=False), chunk)):
        out.update({f"atom_id_{c}": seg.atom_id, f"membership_{c}": seg.membership,
                    f"sizes_{c}": seg.sizes})
    files.write_npz(dst, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
