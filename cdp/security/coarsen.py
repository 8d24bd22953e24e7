"""Coarsening of quasi-identifiers (vectorised over Arrow arrays).

zip -> zip3 ("91750" -> "917"); latitude/longitude -> 1 decimal (about 11 km); birth year -> 5-year band
("1965-1969"). Birth month and the snapshot age are dropped by the protector (age + band = birth year).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

ArrowValues = pa.Array | pa.ChunkedArray


def zip3(zipcodes: ArrowValues) -> ArrowValues:
    """The first three digits of 5-character zip codes."""
    return pc.utf8_slice_codeunits(zipcodes, 0, 3)


def round_coordinate(degrees: ArrowValues) -> ArrowValues:
    """Latitude or longitude rounded to one decimal."""
    return pc.round(pc.cast(degrees, pa.float64()), ndigits=1)


def birth_year_band(years: ArrowValues, width: int = 5) -> ArrowValues:
    """Birth years as "<start>-<end>" bands of `width` years aligned on multiples of `width`."""
    start = pc.multiply(pc.divide(pc.cast(years, pa.int32()), width), width)  # integer division
    end = pc.add(start, width - 1)
    return pc.binary_join_element_wise(pc.cast(start, pa.string()), pc.cast(end, pa.string()), "-")
