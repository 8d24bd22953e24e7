"""Readable segment names from segment profiles, by a fixed rule (same profiles, same names).

A segment's centroid is in standardised units, so each coordinate says how far the segment's mean sits from
the population's, in standard deviations. The name is built from:
- an age word when the table has an age column: "young" (mean under 32), "senior" (over 60);
- a value word from spend: "high-value" (z > 0.8) or "low-value" (z < -0.8);
- the strongest behavioural trait (largest z above 0.5 among the traits below), else "everyday spenders".
Names that collide get their next-strongest trait appended ("... & diners"), then a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# (feature name fragment, word when the segment is high on it, word when low or None)
TRAITS: tuple[tuple[str, str, str | None], ...] = (
    ("share_travel", "travellers", None),
    ("foreign_share", "travellers", None),
    ("online_share", "online shoppers", None),
    ("share_online", "online shoppers", None),
    ("share_grocery", "grocery shoppers", None),
    ("share_health", "health spenders", None),
    ("share_dining", "diners", None),
    ("share_entertainment", "entertainment seekers", None),
    ("share_fuel", "commuters", None),
    ("share_transport", "commuters", None),
    ("share_retail", "retail shoppers", None),
    ("avg_amount", "big-ticket spenders", "small-ticket spenders"),
    ("mean_ticket", "big-ticket spenders", "small-ticket spenders"),
    ("frequency", "frequent spenders", "occasional spenders"),
    ("purchases_365d", "frequent spenders", "occasional spenders"),
)
VALUE_FRAGMENTS = ("monetary", "spend_12m", "net_spend_365d", "heuristic_last_12m")
AGE_FRAGMENTS = ("age_years", "age")
TRAIT_THRESHOLD = 0.5
VALUE_THRESHOLD = 0.8
YOUNG_BELOW, SENIOR_ABOVE = 32.0, 60.0


def _find(features: Sequence[str], fragments: Sequence[str]) -> int | None:
    for fragment in fragments:
        for i, name in enumerate(features):
            if fragment in name:
                return i
    return None


def ranked_traits(features: Sequence[str], centroid: Sequence[float]) -> list[str]:
    """Trait words, strongest first (ties broken by the order of TRAITS), without repeats."""
    scored: list[tuple[float, int, str]] = []
    for order, (fragment, high, low) in enumerate(TRAITS):
        for i, name in enumerate(features):
            if fragment not in name:
                continue
            z = float(centroid[i])
            if z > TRAIT_THRESHOLD:
                scored.append((-z, order, high))
            elif low is not None and z < -TRAIT_THRESHOLD:
                scored.append((z, order, low))
    words: list[str] = []
    for _, _, word in sorted(scored):
        if word not in words:
            words.append(word)
    return words


def base_name(features: Sequence[str], centroid: Sequence[float], profile: Mapping[str, float]) -> list[str]:
    """[prefix, trait, more traits...] for one segment."""
    prefix: list[str] = []
    age = _find(features, AGE_FRAGMENTS)
    if age is not None:
        mean_age = float(profile[features[age]])
        if mean_age < YOUNG_BELOW:
            prefix.append("young")
        elif mean_age > SENIOR_ABOVE:
            prefix.append("senior")
    value = _find(features, VALUE_FRAGMENTS)
    if value is not None:
        if centroid[value] > VALUE_THRESHOLD:
            prefix.append("high-value")
        elif centroid[value] < -VALUE_THRESHOLD:
            prefix.append("low-value")
    traits = ranked_traits(features, centroid) or ["everyday spenders"]
    return [" ".join(prefix + [traits[0]]), *traits[1:]]


def segment_names(
    features: Sequence[str], centroids: Sequence[Sequence[float]], profiles: Sequence[Mapping[str, float]]
) -> list[str]:
    """One unique name per segment, in the order given."""
    parts = [base_name(features, c, p) for c, p in zip(centroids, profiles, strict=True)]
    names = [p[0] for p in parts]
    depth = 1
    while len(set(names)) < len(names) and depth < 4:
        clashing = {n for n in names if names.count(n) > 1}
        names = [
            (n + " & " + parts[i][depth]) if n in clashing and len(parts[i]) > depth else n
            for i, n in enumerate(names)
        ]
        depth += 1
    seen: dict[str, int] = {}
    unique = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        unique.append(n if names.count(n) == 1 else f"{n} {seen[n]}")
    return unique
