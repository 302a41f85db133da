"""`HashIndex`: perceptual hashes (64-bit pHash as one uint64) with a name and a mean colour
each, and the nearest earlier one by Hamming distance among entries of a close colour.

`HashIndex.nearest` answers exactly as one vectorised scan of every entry would (a small index
does just that), but a large index looks only at the entries of the colour cells or hash bands
a lookup can match. tests/test_near_duplicate_index.py holds it to a scan; bench/
bench_near_duplicates.py prints both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# The index answers `nearest` exactly as one vectorised pass over every entry would, but touches
# only a few entries of a large batch: entries grouped by colour cell (a gate box holds few when
# the colour is rare) and by four 16-bit bands of the hash (multi-index hashing: an entry within
# d bits of the query is within d // 4 bits of it in at least one band, so growing the band radius
# finds entries in order of distance). The newest entries wait in a tail scanned directly and are
# merged into both groupings in batches.
BRUTE_FORCE_ENTRIES = 4096  # up to here one pass over every entry is the cheapest lookup
GRID_SCAN_ENTRIES = 12_288  # entries in the gate's colour cells up to which scanning them wins
TAIL_ENTRIES = (1024, 8192)  # newest entries scanned directly: ~2 sqrt(entries), within these
BAND_BUDGET = 1 / 3  # a band search gives up past this share of the entries in the gate's cells
BAND_BITS = 16
BANDS = 64 // BAND_BITS  # a direct-address table of 65,536 buckets per band
GRID_CELL = 4.0  # side of a colour cell, in mean-RGB units
GRID_CELLS = 67  # cells per channel (0..267); colours beyond are clipped into the end cells
NO_MATCH = 65  # a distance above any 64-bit Hamming distance


@functools.cache
def _masks_by_weight() -> list[np.ndarray]:
    """Every 16-bit value grouped by its number of set bits: the XOR masks at each band radius."""
    values = np.arange(1 << BAND_BITS, dtype=np.int64)
    weights = np.bitwise_count(values)
    return [values[weights == w] for w in range(BAND_BITS + 1)]


class _Buckets:
    """Entry ids grouped by an integer key (CSR), ascending within a key, each with its hash.

    Entries come in id order, so appending new ones at the end of their key's run keeps every
    run sorted (np.insert keeps values bound for one position in the order given).
    """

    def __init__(self, keys: int) -> None:
        # Typed loosely: numpy's shape typing differs between releases (2.2 vs 2.4).
        self.offsets: np.ndarray = np.zeros(keys + 1, dtype=np.int64)
        self.ids: np.ndarray = np.zeros(0, dtype=np.int32)
        self.hashes: np.ndarray = np.zeros(0, dtype=np.uint64)

    def insert(self, keys: np.ndarray, ids: np.ndarray, hashes: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        at = self.offsets[keys + 1]
        self.ids = np.insert(self.ids, at, ids[order].astype(np.int32))
        self.hashes = np.insert(self.hashes, at, hashes[order])
        self.offsets[1:] += np.cumsum(np.bincount(keys, minlength=self.offsets.size - 1))

    def positions(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """Positions in `ids` / `hashes` of the runs [start, stop), concatenated."""
        lengths = stops - starts
        ends = np.cumsum(lengths)
        total = int(ends[-1]) if ends.size else 0
        return np.repeat(starts - (ends - lengths), lengths) + np.arange(total)


@dataclass
class _Lookup:
    """One `nearest` query: the hash and colour sought, the gate, entries [0, end) eligible,
    and the best (distance, id) found so far."""

    value: np.uint64
    colour: np.ndarray
    tolerance: float
    end: int
    best: tuple[int, int] = (NO_MATCH, -1)

    def answer(self) -> tuple[int, int] | None:
        return None if self.best[1] < 0 else self.best


class HashIndex:
    """Perceptual hashes with a name and a mean colour each; nearest neighbour by Hamming
    distance among entries whose mean colour is close.

    The colour gate matters for synthetic images: flat backgrounds with a few shapes give
    luminance thumbnails so alike that their pHashes collide although the images differ in
    every colour. A copy keeps its colours.

    Lookups of a large index look at the entries in the gate's colour cells, or at those that
    share a band of the hash (see the comment above), not at every entry; the answers are those
    of a scan of every entry, which is what a small index does. bench/bench_near_duplicates.py
    prints both.
    """

    def __init__(
        self,
        *,
        brute_force_entries: int = BRUTE_FORCE_ENTRIES,
        grid_scan_entries: int = GRID_SCAN_ENTRIES,
        tail_entries: tuple[int, int] = TAIL_ENTRIES,
        band_budget: float = BAND_BUDGET,
    ) -> None:
        # Typed loosely: numpy's shape typing differs between releases (2.2 vs 2.4).
        self._hashes: np.ndarray = np.zeros(64, dtype=np.uint64)
        self._colours: np.ndarray = np.zeros((64, 3), dtype=np.float32)
        self._names: list[str] = []
        self._positions: dict[str, int] = {}
        self._brute_force_entries = brute_force_entries
        self._grid_scan_entries = grid_scan_entries
        self._tail_entries = tail_entries
        self._band_budget = band_budget
        self._indexed = 0  # entries [0, indexed) are in the groupings, the rest in the tail
        self._grid: _Buckets | None = None
        self._bands: _Buckets | None = None

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: str) -> bool:
        return name in self._positions

    def add(self, name: str, value: np.uint64, colour: np.ndarray) -> None:
        """Remember a hash; a name seen before keeps its first hash (a re-judged sample)."""
        if name in self._positions:
            return
        if len(self._names) == self._hashes.size:
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
            self._colours = np.concatenate([self._colours, np.zeros_like(self._colours)])
        self._positions[name] = len(self._names)
        self._hashes[len(self._names)] = value
        self._colours[len(self._names)] = colour
        self._names.append(name)

    def nearest(
        self,
        value: np.uint64,
        colour: np.ndarray,
        *,
        colour_tolerance: float,
        before: str | None = None,
    ) -> tuple[int, str] | None:
        """(distance in bits, name) of the closest hash among entries whose mean colour is within
        `colour_tolerance` (per channel), the earliest of equally close ones; only those added
        before `before` when that name is already in (a sample judged again compares with what
        came before it)."""
        end = self._positions.get(before, len(self._names)) if before else len(self._names)
        box = None if end <= self._brute_force_entries else _gate_box(colour, colour_tolerance)
        if box is None:
            found = self._scan(end, value, colour, colour_tolerance)
        else:
            found = self._search(end, value, colour, colour_tolerance, box)
        return None if found is None else (found[0], self._names[found[1]])

    def _scan(
        self, end: int, value: np.uint64, colour: np.ndarray, tolerance: float
    ) -> tuple[int, int] | None:
        """One vectorised pass over the first `end` entries: what the index must equal."""
        close = np.abs(self._colours[:end] - colour).max(axis=1) <= tolerance
        if not close.any():
            return None
        distances = np.where(close, np.bitwise_count(self._hashes[:end] ^ value), NO_MATCH)
        best = int(np.argmin(distances))
        return int(distances[best]), best

    def _search(
        self,
        end: int,
        value: np.uint64,
        colour: np.ndarray,
        tolerance: float,
        box: tuple[np.ndarray, np.ndarray],
    ) -> tuple[int, int] | None:
        """The index's lookup: the tail, then the gate's colour cells or the band tables."""
        self._merge_tail()
        lookup = _Lookup(value, colour, tolerance, end)
        if end > self._indexed:  # the newest entries, scanned directly
            tail = self._hashes[self._indexed : end]
            self._offer(lookup, tail, lambda at: at + self._indexed)
        assert self._grid is not None
        grid = self._grid
        first, last = box
        xs = np.arange(first[0], last[0] + 1)
        ys = np.arange(first[1], last[1] + 1)
        rows = ((xs[:, None] * GRID_CELLS + ys[None, :]) * GRID_CELLS).ravel()
        starts, stops = grid.offsets[rows + first[2]], grid.offsets[rows + last[2] + 1]
        in_cells = int((stops - starts).sum())
        # A common colour leaves a good part of the batch in the gate's cells: multi-index
        # hashing then looks at fewer entries, though each costs about three times as much.
        if in_cells > max(self._grid_scan_entries, self._indexed // 5) and self._multi_index(
            lookup, budget=int(in_cells * self._band_budget)
        ):
            return lookup.answer()
        if in_cells:
            kept = stops > starts
            starts, stops = starts[kept], stops[kept]
            ends = np.cumsum(stops - starts)
            hashes = np.concatenate(
                [grid.hashes[a:b] for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]
            )

            def ids_at(at: np.ndarray) -> np.ndarray:
                run = np.searchsorted(ends, at, side="right")
                return grid.ids[starts[run] + at - (ends[run] - (stops[run] - starts[run]))]

            self._offer(lookup, hashes, ids_at)
        return lookup.answer()

    def _multi_index(self, lookup: _Lookup, *, budget: int) -> bool:
        """Multi-index hashing: band radius 0, 1, 2, ... until every entry as close as the best
        found is in. False when that would take more than `budget` entries (a rare colour):
        scanning the colour cells is then the cheaper way."""
        bands = self._band_buckets()
        masks = _masks_by_weight()
        query = int(lookup.value)
        parts = [(query >> (64 - BAND_BITS * (k + 1))) & 0xFFFF for k in range(BANDS)]
        examined = 0
        radius = 0
        while radius <= BAND_BITS:
            # After band k at radius r every entry within BANDS * r + k bits is in. One step
            # takes the bands a radius needs given the best so far (radii 0-2 together: few
            # probes), so the best found decides how far the next step goes. Entries as far as
            # the best count too: of two at one distance the earlier one is the answer.
            last = radius if radius >= 2 else min(2, lookup.best[0] // BANDS)
            probes = []
            for r in range(radius, last + 1):
                needed = min(BANDS - 1, lookup.best[0] - BANDS * r)
                probes += [(k << BAND_BITS) + (parts[k] ^ masks[r]) for k in range(needed + 1)]
            if not probes:
                break
            keys = np.concatenate(probes)
            starts, stops = bands.offsets[keys], bands.offsets[keys + 1]
            examined += int((stops - starts).sum())
            if examined > budget:
                return False
            where = bands.positions(starts, stops)
            self._offer(lookup, bands.hashes[where], functools.partial(_ids_at, bands.ids, where))
            radius = last + 1
        return True

    def _offer(
        self, lookup: _Lookup, hashes: np.ndarray, ids_at: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        """Keep in `lookup.best` the least (distance, id) of it and of these candidates within
        the gate (`ids_at`: the entry ids of positions in `hashes`).

        Only candidates that could beat the best are gated (a gather of colours), nearest
        first, a few bits of distance at a time.
        """
        distances = np.bitwise_count(hashes ^ lookup.value)
        at = np.flatnonzero(distances <= lookup.best[0])
        if not at.size:
            return
        distances = distances[at]
        floor = int(distances.min())
        while floor <= lookup.best[0]:
            ceiling = min(lookup.best[0], floor + 3)
            near = (distances >= floor) & (distances <= ceiling)
            if near.any():
                ids = ids_at(at[near])
                colours = self._colours[ids]
                close = np.abs(colours - lookup.colour).max(axis=1) <= lookup.tolerance
                close &= ids < lookup.end
                if close.any():
                    found = distances[near][close]
                    least = int(found.min())
                    first = int(ids[close][found == least].min())
                    lookup.best = min(lookup.best, (least, first))
                    return
            floor = ceiling + 1

    def _merge_tail(self) -> None:
        """Merge the tail into the groupings once it outgrows its share (~2 sqrt(entries))."""
        low, high = self._tail_entries
        tail = len(self._names) - self._indexed
        if self._grid is not None and tail <= min(high, max(low, 2 * int(np.sqrt(self._indexed)))):
            return
        ids = np.arange(self._indexed, len(self._names))
        hashes = self._hashes[ids]
        colours = self._colours[ids].astype(np.float64)
        finite = np.isfinite(colours).all(axis=1)  # other colours never pass a finite gate
        cells = _cell(colours[finite])
        keys = (cells[:, 0] * GRID_CELLS + cells[:, 1]) * GRID_CELLS + cells[:, 2]
        if self._grid is None:
            self._grid = _Buckets(GRID_CELLS**3)
        self._grid.insert(keys, ids[finite], hashes[finite])
        if self._bands is not None:
            self._bands.insert(*_band_keys(ids, hashes))
        self._indexed = len(self._names)

    def _band_buckets(self) -> _Buckets:
        """The band tables, built on first use (only large, common-coloured batches need them)."""
        if self._bands is None:
            self._bands = _Buckets(BANDS << BAND_BITS)
            ids = np.arange(self._indexed)
            self._bands.insert(*_band_keys(ids, self._hashes[ids]))
        return self._bands


def _ids_at(ids: np.ndarray, where: np.ndarray, at: np.ndarray) -> np.ndarray:
    return ids[where[at]]


def _gate_box(colour: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The colour cells (first, last per channel) an entry within the gate can lie in; None
    where the cells cannot tell (a colour or tolerance that is not a finite number)."""
    centre = np.asarray(colour, dtype=np.float64)
    if centre.shape != (3,) or not np.isfinite(centre).all():
        return None
    if not np.isfinite(tolerance) or tolerance < 0:
        return None
    # A margin far above float32 rounding: the exact gate is applied to what the cells hold.
    reach = tolerance + 1e-3 * (tolerance + np.abs(centre) + 1)
    return _cell(centre - reach), _cell(centre + reach)


def _cell(colours: np.ndarray) -> np.ndarray:
    """Colour cell per channel, clipped to the grid (monotone: a range maps to a range)."""
    return np.clip(np.floor(colours / GRID_CELL), 0, GRID_CELLS - 1).astype(np.int64)


def _band_keys(ids: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keys, ids, hashes) with one key per entry and band: band * 65,536 + the band's bits."""
    keys = [
        (k << BAND_BITS) + ((hashes >> np.uint64(64 - BAND_BITS * (k + 1))) & np.uint64(0xFFFF))
        for k in range(BANDS)
    ]
    return (
        np.concatenate(keys).astype(np.int64),
        np.tile(ids, BANDS),
        np.tile(hashes, BANDS),
    )
