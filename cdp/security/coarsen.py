"""Coarsening of quasi-identifiers (vectorised over Arrow arrays).

zip -> zip3 ("91750" -> "917"); latitude/longitude -> 1 decimal (about 11 km), or a coarser grid of whole
degrees; birth year -> a band of years ("1965-1969", "1960-1969"); a number -> the lower bound of its
equal-width band, with a label ("40000-49999", or "200000+" for the open top band). Birth month and the
snapshot age are dropped by the protector (age + band = birth year).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

ArrowValues = pa.Array | pa.ChunkedArray


def zip3(zipcodes: ArrowValues) -> ArrowValues:
    """The first three digits of 5-character zip codes."""
    return pc.utf8_slice_codeunits(zipcodes, 0, 3)


def round_coordinate(degrees: ArrowValues) -> ArrowValues:
    """Latitude or longitude rounded to one decimal."""
    return pc.round(pc.cast(degrees, pa.float64()), ndigits=1)


def snap_coordinate(degrees: ArrowValues, step: int) -> ArrowValues:
    """Latitude or longitude rounded to a multiple of `step` whole degrees (1: about 110 km)."""
    return pc.round_to_multiple(pc.cast(degrees, pa.float64()), multiple=float(step))


def birth_year_band(years: ArrowValues, width: int = 5) -> ArrowValues:
    """Birth years as "<start>-<end>" bands of `width` years aligned on multiples of `width`."""
    start = pc.multiply(pc.divide(pc.cast(years, pa.int32()), width), width)  # integer division
    end = pc.add(start, width - 1)
    return pc.binary_join_element_wise(pc.cast(start, pa.string()), pc.cast(end, pa.string()), "-")


def widen_birth_year_band(bands: ArrowValues, width: int) -> ArrowValues:
    """Bands of `birth_year_band` re-cut into bands of `width` years (a multiple of their own width)."""
    start = pc.list_element(pc.split_pattern(bands, "-"), 0)
    return birth_year_band(pc.cast(start, pa.int32()), width)


def band_start_and_end(bands: ArrowValues) -> tuple[ArrowValues, ArrowValues]:
    """First and last year of "<start>-<end>" birth-year bands (int32; null stays null)."""
    parts = pc.split_pattern(bands, "-")
    return (
        pc.cast(pc.list_element(parts, 0), pa.int32()),
        pc.cast(pc.list_element(parts, 1), pa.int32()),
    )


@dataclass(frozen=True)
class Bands:
    """Equal-width bands aligned on multiples of `width`; every value from `top` on is one open band.

    `top` must be a multiple of `width` so a band never straddles it. A value is kept as its band's lower
    bound (a number models can still use); `label` spells the band out.
    """

    width: int
    top: int | None = None

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError("a band is at least 1 wide")
        if self.top is not None and self.top % self.width:
            raise ValueError(f"the open band's start {self.top} is not a multiple of the width {self.width}")

    def lower_bound(self, values: ArrowValues) -> ArrowValues:
        """The lower bound of each value's band (int64; null stays null)."""
        floored = pc.floor(pc.divide(pc.cast(values, pa.float64()), float(self.width)))
        lower = pc.multiply(pc.cast(floored, pa.int64()), self.width)
        if self.top is None:
            return lower
        return pc.min_element_wise(lower, pa.scalar(self.top, pa.int64()))

    def label(self, lower_bounds: ArrowValues) -> ArrowValues:
        """ "<lower>-<upper>" per band's lower bound ("<lower>" when 1 wide, "<top>+" for the open band)."""
        lower = pc.cast(lower_bounds, pa.int64())
        text = pc.cast(lower, pa.string())
        if self.width > 1:
            upper = pc.cast(pc.add(lower, self.width - 1), pa.string())
            text = pc.binary_join_element_wise(text, upper, "-")
        if self.top is None:
            return text
        return pc.if_else(pc.greater_equal(lower, self.top), pa.scalar(f"{self.top}+"), text)
