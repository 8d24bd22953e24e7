"""The serving benchmarks' champion: a small fraud booster on real online features, registered and approved.

A 200-tree depth-6 booster is trained on the fraud view's online features of random events (tokens only,
no personal data), saved as a model folder (`model.ubj` + `features.json`), registered in the platform's
model registry as `cdp-fraud` and approved, so the inference app and the stream handler load it as the
champion exactly as they would a trained one.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from cdp.backends import Backends

EVENTS, CARDS, ROUNDS, DEPTH = 3_000, 50, 200, 6
MODEL_NAME = "cdp-fraud"
ALERT_THRESHOLD = 0.5
B32 = "abcdefghijklmnopqrstuvwxyz234567"


@dataclass(frozen=True)
class Champion:
    """The registered model: its folder, feature names (model order) and the encoded training rows."""

    folder: Path
    features: tuple[str, ...]
    encoded: np.ndarray  # float32, one row per training event, columns in `features` order
    events: list[dict]  # the raw training events (ts as datetime)


def token(prefix: str, rng: random.Random) -> str:
    """A random token of the platform's shape (`crd_` / `usr_` + 26 base32 characters)."""
    return prefix + "".join(rng.choice(B32) for _ in range(26))


def random_events(rng: random.Random, count: int = EVENTS, cards: int = CARDS) -> list[dict]:
    """`count` protected transactions of `cards` cards, 17 minutes apart from 2019-01-01, in time order."""
    card_tokens = [token("crd_", rng) for _ in range(cards)]
    users = {c: token("usr_", rng) for c in card_tokens}
    start = datetime(2019, 1, 1)
    out = []
    for i in range(count):
        card = rng.choice(card_tokens)
        online = rng.random() < 0.3
        out.append({
            "txn_id": f"{card[4:]}-{i + 1}", "user_token": users[card], "card_token": card,
            "ts": start + timedelta(minutes=17 * i), "amount_cents": int(rng.lognormvariate(8, 1.2)),
            "channel": "online" if online else rng.choice(("swipe", "chip")),
            "merchant_id": rng.randint(1, 500), "merchant_city": None if online else "Reno",
            "merchant_state": None if online else "NV", "zip": None if online else "89501",
            "mcc": rng.choice((5411, 7995, 5812, 5541, 5732, 3000)),
            "errors": ["Bad CVV"] if rng.random() < 0.03 else None,
        })  # fmt: skip
    return out


def train_booster(folder: Path, events: list[dict]) -> tuple[tuple[str, ...], np.ndarray]:
    """Train the booster on the events' online features and save the model folder; (features, encoded)."""
    import xgboost

    from cdp.online.local import LocalOnlineStore
    from features.fraud import FRAUD_VIEW
    from features.online import OnlineFeatures
    from training.fraud.preprocess import encode_features, feature_spec

    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(None))
    frame = pd.DataFrame([online.update(e) for e in events])
    frame["split"] = "train"
    label = ((frame["amount_cents"] > 8000) & (frame["is_new_merchant"].astype(bool))).astype(int)
    spec = feature_spec(frame)
    x = encode_features(frame, spec).to_numpy(np.float32)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": DEPTH, "eta": 0.1, "seed": 7, "nthread": 1},
        xgboost.DMatrix(x, label=label, feature_names=spec["features"]),
        ROUNDS,
    )
    folder.mkdir(parents=True)
    booster.save_model(str(folder / "model.ubj"))
    (folder / "features.json").write_text(
        json.dumps({"features": spec["features"], "one_hot": spec["one_hot"]})
    )
    return tuple(spec["features"]), x


def register_champion(backends: Backends, folder: Path, seed: int = 7) -> Champion:
    """Train the booster into `folder`, register it in `backends`' registry and approve it (version 1)."""
    from cdp.registry import Lineage

    events = random_events(random.Random(seed))
    features, encoded = train_booster(folder, events)
    registry = backends.model_registry
    lineage = Lineage("bench", features, "bench", "bench")
    registry.register(MODEL_NAME, folder, {"alert_threshold": ALERT_THRESHOLD}, {}, lineage)
    registry.approve(MODEL_NAME, 1, "bench", "bench")
    return Champion(folder, features, encoded, events)


def load_booster(champion: Champion):  # noqa: ANN201 - an xgboost.Booster (xgboost imported lazily)
    """The champion's booster, loaded from its model folder (single-threaded, like the serving path)."""
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(str(champion.folder / "model.ubj"))
    return booster
