"""Merchant identities: a signed 64-bit id hashed from where the merchant is, its category and its rank.

Customers in the same city share that city's merchants (and everyone shares the online ones), so the
same id recurs across customers; a US merchant's zip is one of its city's zip codes, chosen by the hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cdp.synth.activity import Activity
from cdp.synth.mcc import catalogue


def merchant_id(key: str) -> int:
    """The signed 64-bit `Merchant Name` of a merchant key (stable across runs and machines)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


@dataclass(frozen=True)
class MerchantColumns:
    merchant_id: pa.Array  # int64
    city: pa.Array  # string
    state: pa.Array  # string, null online
    zip: pa.Array  # string, null online and abroad


def resolve_merchants(activity: Activity) -> MerchantColumns:
    """Per-row merchant columns; hashes each distinct (place, MCC, rank) of the customer once."""
    a = activity
    codes = catalogue().codes
    key = (a.place.astype(np.int64) << 24) | (a.mcc_index.astype(np.int64) << 12) | a.rank
    unique, inverse = np.unique(key, return_inverse=True)
    ids, cities, states, zips = [], [], [], []
    for k in unique.tolist():
        place = a.places[k >> 24]
        mcc = int(codes[(k >> 12) & 0xFFF])
        rank = k & 0xFFF
        text = f"{place.city}|{place.state or ''}|{mcc}|{rank}"
        mid = merchant_id(text)
        ids.append(mid)
        cities.append(place.city)
        states.append(place.state)
        zips.append(place.zips[mid % len(place.zips)] if place.zips else None)
    index = pa.array(inverse.astype(np.int32))
    return MerchantColumns(
        merchant_id=pa.array(np.asarray(ids, dtype=np.int64)[inverse]),
        city=pa.array(cities, pa.string()).take(index),
        state=pa.array(states, pa.string()).take(index),
        zip=pa.array(zips, pa.string()).take(index),
    )
