"""A layer's page pool, sized and aligned from its KV-cache spec, and a minimal block manager (vLLM's,
as sdk/src/paged_kv.cpp's PagedKvManager) that turns sequence steps into a forward's integer arrays."""

import random
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidArgumentError, OutOfMemoryError


def _round_up(value, multiple):
    return (value + multiple - 1) // multiple * multiple if multiple else value


class PagePool:
    """num_pages pages of spec.page_bytes, page i at `data_ptr + i * stride_bytes`.  The stride is
    page_bytes + guard_bytes rounded up to the spec's alignment; guard_bytes also lie before page 0 and
    after the last page, filled with `fill` like the rest, so tests can check that nothing wrote there.
    device: "cpu" (a NumPy buffer) or a torch CUDA device ("cuda", "cuda:1", a torch.device)."""

    def __init__(self, spec, num_pages, device="cpu", guard_bytes=0, fill=0):
        if not isinstance(num_pages, int) or isinstance(num_pages, bool) or num_pages < 1:
            raise InvalidArgumentError(f"page pool: num_pages = {num_pages!r}; allowed: an int >= 1")
        alignment = max(spec.page_alignment, 64)
        if alignment & (alignment - 1):
            raise InvalidArgumentError(f"page pool: page_alignment = {spec.page_alignment} is not a power of two")
        self.spec = spec
        self.num_pages = num_pages
        self.page_bytes = spec.page_bytes
        self.stride_bytes = _round_up(spec.page_bytes + guard_bytes, alignment)
        self.leading_bytes = _round_up(guard_bytes, alignment)
        self.allocation_bytes = self.leading_bytes + self.stride_bytes * num_pages + guard_bytes
        # Over-allocate by one alignment and start at the first aligned byte.
        self.allocation, base = _allocate(self.allocation_bytes + alignment, device, fill)
        self._offset = (-base) % alignment
        self.data_ptr = base + self._offset + self.leading_bytes
        self.device = device

    @property
    def bytes(self):
        """The pool's own bytes (guards included) as a 1-D uint8 view: NumPy on CPU, torch on CUDA."""
        return self.allocation[self._offset:self._offset + self.allocation_bytes]

    def page(self, index):
        start = self.leading_bytes + index * self.stride_bytes
        return self.bytes[start:start + self.page_bytes]

    @property
    def nbytes(self):
        """Bytes the pages hold (what the cache costs), num_pages x page_bytes."""
        return self.num_pages * self.page_bytes


def _allocate(size, device, fill):
    if str(device) == "cpu":
        try:
            buffer = np.full(size, fill, dtype=np.uint8)
        except MemoryError:
            raise OutOfMemoryError(f"page pool: cannot allocate {size} bytes") from None
        return buffer, buffer.ctypes.data
    import torch
    buffer = torch.full((size,), fill, dtype=torch.uint8, device=torch.device(device))
    return buffer, buffer.data_ptr()


@dataclass
class StepBatch:
    """The integer arrays of one forward step (atb_forward_args' batch fields)."""

    slot_mapping: np.ndarray
    query_start_loc: np.ndarray
    seq_lens: np.ndarray
    block_tables: np.ndarray  # [num_seqs, block_table_stride]
    sequence_ids: list = field(default_factory=list)

    @property
    def num_tokens(self):
        return int(self.slot_mapping.size)

    @property
    def num_seqs(self):
        return int(self.seq_lens.size)

    def to(self, device):
        """The same arrays as torch tensors on `device` (for CUDA layers)."""
        import torch
        return StepBatch(*(torch.from_numpy(a).to(device) for a in (self.slot_mapping, self.query_start_loc,
                                                                      self.seq_lens, self.block_tables)),
                         list(self.sequence_ids))


class PagedKvManager:
    """Sequences, their block tables and a free list of pages.  shuffle_seed hands pages out in a
    shuffled order (non-contiguous tables, as a long-running engine has)."""

    def __init__(self, block_size, num_pages, shuffle_seed=0):
        self.block_size = block_size
        self._free = list(range(num_pages - 1, -1, -1))
        if shuffle_seed:
            random.Random(shuffle_seed).shuffle(self._free)
        self._sequences = {}  # id -> [length, pages]

    @property
    def free_pages(self):
        return len(self._free)

    def length(self, sequence_id):
        return self._sequences.get(sequence_id, [0, []])[0]

    def schedule(self, steps):
        """steps: [(sequence_id, new_tokens)]; appends the tokens (allocating pages) and returns the
        step's StepBatch.  Changes nothing and raises OutOfMemoryError when too few pages are free."""
        needed = 0
        for sequence_id, new_tokens in steps:
            if new_tokens < 0:
                raise InvalidArgumentError(f"schedule: new_tokens = {new_tokens}; allowed: >= 0")
            length, pages = self._sequences.get(sequence_id, [0, []])
            needed += max(0, -(-(length + new_tokens) // self.block_size) - len(pages))
        if needed > self.free_pages:
            raise OutOfMemoryError(f"schedule: needs {needed} pages, {self.free_pages} free")
        slots, starts, lens, ids = [], [0], [], []
        for sequence_id, new_tokens in steps:
            sequence = self._sequences.setdefault(sequence_id, [0, []])
            start = sequence[0]
            sequence[0] += new_tokens
            while len(sequence[1]) * self.block_size < sequence[0]:
                sequence[1].append(self._free.pop())
            for position in range(start, sequence[0]):
                slots.append(sequence[1][position // self.block_size] * self.block_size + position % self.block_size)
            starts.append(starts[-1] + new_tokens)
            lens.append(sequence[0])
            ids.append(sequence_id)
        widest = max([1] + [len(self._sequences[i][1]) for i in ids])
        tables = np.zeros((len(ids), widest), dtype=np.int32)
        for row, sequence_id in enumerate(ids):
            pages = self._sequences[sequence_id][1]
            tables[row, :len(pages)] = pages
        return StepBatch(np.array(slots, dtype=np.int64), np.array(starts, dtype=np.int32),
                         np.array(lens, dtype=np.int32), tables, ids)

    def release(self, sequence_id):
        """Ends a sequence; its pages return to the free list."""
        sequence = self._sequences.pop(sequence_id, None)
        if sequence is not None:
            self._free.extend(reversed(sequence[1]))
