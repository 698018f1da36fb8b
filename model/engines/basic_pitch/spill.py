"""A 2-D float32 array that lives in an unlinked temporary file instead of memory.

An hour of audio yields 330 MB of pitch contours and 110 MB of onsets that the
note decoder reads only a slice at a time. Appending rows to a file and
reading slices back with pread (not mmap, whose pages would count as resident)
keeps that out of the process's memory.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np


class RowSpill:
    """Rows appended in order, read back by `spill[start:stop]` as a fresh (n, n_columns) array."""

    def __init__(self, n_columns: int, *, dtype=np.float32):
        self._file = tempfile.TemporaryFile(prefix="midibridge-", buffering=0)
        self._dtype = np.dtype(dtype)
        self._n_columns = n_columns
        self._row_bytes = n_columns * self._dtype.itemsize
        self._n_rows = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self._n_rows, self._n_columns)

    def __len__(self) -> int:
        return self._n_rows

    def append(self, rows: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(rows, dtype=self._dtype).data)
        self._n_rows += rows.shape[0]

    def truncate(self, n_rows: int) -> None:
        """Forget every row from `n_rows` on."""
        self._n_rows = min(self._n_rows, n_rows)

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, step = index.indices(self._n_rows)
        if step != 1:
            raise IndexError("RowSpill reads contiguous row slices only")
        count = max(stop - start, 0)
        data = os.pread(self._file.fileno(), count * self._row_bytes, start * self._row_bytes)
        return np.frombuffer(data, dtype=self._dtype).reshape(count, self._n_columns)

    def close(self) -> None:
        self._file.close()
