"""Getting syllables to the model: the train/validation split and two batch sources.

- :class:`DeviceSource` keeps the whole store on the training device as ``uint8`` (the
  store's own dtype, 4× smaller than float32) and gathers each batch there, so a step
  never waits for the host.
- :class:`StreamSource` reads batches from the HDF5 shards in worker processes (a torch
  ``DataLoader`` over row batches), for stores larger than device or host memory.

Both yield identical float batches for identical row orders (the uint8 -> float
conversion happens on the device in both), so the choice changes speed, not results.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


# -- split ---------------------------------------------------------------------------
def split_rows(table, *, by: str = "recording", val_fraction: float = 0.1, seed: int = 0):
    """Split store rows into training and validation sets by whole recordings (or animals).

    Units are shuffled with ``seed`` and moved to validation until it holds at least
    ``val_fraction`` of the syllables; at least one unit always stays in training. With a
    single unit the split falls back to individual syllables (and says so).

    Returns
    -------
    train_rows, val_rows : ndarray of int64
        Sorted table positions.
    info : dict
        ``unit`` actually used and the validation units.
    """
    n = len(table)
    rows = np.arange(n, dtype=np.int64)
    if val_fraction <= 0 or n == 0:
        return rows, rows[:0], {"unit": by, "val_units": []}
    unit = by
    keys = table[by].astype(str).to_numpy() if by in table else np.full(n, "")
    if by == "animal" and (keys == "").all():
        log.warning("split_by=animal but the store has no animal labels; splitting by recording")
        unit = "recording"
        keys = table["recording"].astype(str).to_numpy()
    units = np.unique(keys)
    rng = np.random.default_rng(seed)
    if len(units) < 2:
        log.warning("only one %s in the store: validation rows are drawn from individual syllables", unit)
        n_val = int(round(val_fraction * n))
        n_val = min(max(n_val, 1), n - 1) if n > 1 else 0
        val = np.sort(rng.permutation(n)[:n_val])
        return np.setdiff1d(rows, val), val, {"unit": "syllable", "val_units": []}
    counts = {u: int(c) for u, c in zip(*np.unique(keys, return_counts=True))}
    order = units[rng.permutation(len(units))]
    target = val_fraction * n
    val_units, n_val = [], 0
    for u in order[:-1]:  # keep at least one unit for training
        if n_val >= target:
            break
        val_units.append(str(u))
        n_val += counts[u]
    is_val = np.isin(keys, val_units)
    return rows[~is_val], rows[is_val], {"unit": unit, "val_units": sorted(val_units)}


# -- epoch order -----------------------------------------------------------------------
def epoch_batches(rows: np.ndarray, perm: np.ndarray, batch_size: int, *, rank: int = 0,
                  world_size: int = 1) -> list[np.ndarray]:
    """Batches of table positions for one epoch of one process.

    ``perm`` permutes ``range(len(rows))``. Like ``DistributedSampler``, the permuted list
    is padded (by wrapping) to a multiple of ``world_size`` and process ``rank`` takes
    every ``world_size``-th element, so all processes see the same number of batches.
    Every syllable is in a batch: an incomplete last batch is kept (dropping it would leave
    up to ``batch_size - 1`` syllables of a small store unseen in every epoch), except that a
    single left-over syllable joins the previous batch, since batch normalisation needs two.
    """
    order = rows[perm]
    if world_size > 1:
        total = -(-len(order) // world_size) * world_size
        if total > len(order):
            order = np.concatenate([order, order[: total - len(order)]])
        order = order[rank::world_size]
    starts = list(range(0, len(order), batch_size))
    if len(starts) > 1 and len(order) - starts[-1] == 1:
        starts.pop()
    ends = starts[1:] + [len(order)]
    return [order[a:b] for a, b in zip(starts, ends)]


def to_float_batch(x_u8, *, channels_last: bool):
    """``uint8 (B, H, W)`` tensor -> float32 ``(B, 1, H, W)`` in [0, 1] on the same device."""
    import torch

    x = x_u8.unsqueeze(1).to(torch.float32).div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# -- memory budget -------------------------------------------------------------------------
def available_host_bytes() -> int:
    """Memory available to this process (MemAvailable, else physical pages free)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def available_device_bytes(device) -> int:
    import torch

    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps":
        try:
            return int(torch.mps.recommended_max_memory() - torch.mps.current_allocated_memory())
        except Exception:  # pragma: no cover - older torch
            return available_host_bytes() // 2
    return available_host_bytes()


def choose_data_on_device(setting, n_bytes: int, device, fraction: float) -> bool:
    """Resolve ``data_on_device`` ("auto" compares the store size with the free memory)."""
    if setting is True or setting is False:
        return bool(setting)
    return n_bytes <= fraction * available_device_bytes(device)


# -- sources ------------------------------------------------------------------------------
class DeviceSource:
    """The store's spectrograms as one ``uint8`` tensor on ``device``; batches gathered there."""

    def __init__(self, store, device, *, channels_last: bool = True, chunk: int = 8192):
        import torch

        h, w = store.spec_shape
        self.device = device
        self.channels_last = channels_last
        self.data = torch.empty((len(store), h, w), dtype=torch.uint8, device=device)
        # Filled in chunks so the host never holds more than one chunk beyond the tensor.
        for pos, block in store.iter_batches(chunk, dtype=np.uint8):
            self.data[int(pos[0]):int(pos[-1]) + 1] = torch.from_numpy(block).to(device)
        self.nbytes = self.data.numel()

    def batches(self, batch_rows: list[np.ndarray]):
        import torch

        if not batch_rows:
            return
        # One host->device copy of the epoch's indices, then pure device indexing.
        flat = torch.from_numpy(np.concatenate(batch_rows)).to(self.device, non_blocking=True)
        start = 0
        for b in batch_rows:
            idx = flat[start:start + len(b)]
            start += len(b)
            yield to_float_batch(self.data.index_select(0, idx), channels_last=self.channels_last)

    def close(self):
        self.data = None


class _RowReader:
    """Picklable reader of store rows; each process opens the shard files it needs once."""

    def __init__(self, store):
        self.root = str(store.path)
        self.shard = store.table["shard"].to_numpy().astype(str)
        self.index = store.table["index"].to_numpy().astype(np.int64)
        self.shape = tuple(store.spec_shape)
        self._files = {}
        self._pid = None

    def _file(self, rel):
        import h5py

        if self._pid != os.getpid():  # never share HDF5 handles across fork
            self._files, self._pid = {}, os.getpid()
        f = self._files.get(rel)
        if f is None:
            f = self._files[rel] = h5py.File(Path(self.root) / rel, "r")
        return f["spectrograms"]

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self.shape), dtype=np.uint8)
        shards = self.shard[rows]
        index = self.index[rows]
        for s in dict.fromkeys(shards):
            sel = np.flatnonzero(shards == s)
            # h5py fancy indexing wants increasing unique indices
            uniq, inverse = np.unique(index[sel], return_inverse=True)
            out[sel] = self._file(s)[uniq][inverse]
        return out

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_files"], state["_pid"] = {}, None
        return state


class _RowsDataset:
    """Map-style dataset whose items are whole batches (index = array of table positions)."""

    def __init__(self, reader: _RowReader):
        self.reader = reader

    def __getitem__(self, rows):
        import torch

        return torch.from_numpy(self.reader(rows))


class _BatchSampler:
    """Yields the current epoch's row batches (mutable, so persistent workers can be reused)."""

    def __init__(self):
        self.batches: list[np.ndarray] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


class StreamSource:
    """Batches read from the HDF5 shards by ``num_workers`` DataLoader workers."""

    def __init__(self, store, device, *, channels_last: bool = True, num_workers: int = 2, prefetch: int = 4):
        import torch

        self.device = device
        self.channels_last = channels_last
        self.reader = _RowReader(store)
        self.sampler = _BatchSampler()
        # A private generator: DataLoader would otherwise draw worker seeds from the
        # global torch RNG, which would make resumed runs diverge from uninterrupted ones.
        kwargs = dict(batch_size=None, sampler=self.sampler, num_workers=num_workers,
                      pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))
        if num_workers > 0:
            kwargs.update(persistent_workers=True, prefetch_factor=prefetch)
        self.loader = torch.utils.data.DataLoader(_RowsDataset(self.reader), **kwargs)
        self.nbytes = 0

    def batches(self, batch_rows: list[np.ndarray]):
        self.sampler.batches = list(batch_rows)
        if not batch_rows:
            return
        for x in self.loader:
            yield to_float_batch(x.to(self.device, non_blocking=True), channels_last=self.channels_last)

    def close(self):
        self.loader = None
