"""Everything the app serves from, built once per app: model holders, online features, profiles, keys."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cdp.apikeys.port import ApiKeyStore
from cdp.backends import Backends
from features.online import lake_card_profiles
from inference.card_features import CardFeatures
from inference.config import ServingConfig
from inference.degraded import DegradedDecisions
from inference.holder import ModelHolder
from inference.loaded import load_version
from inference.profiles import CustomerProfiles
from inference.ratelimit import RateLimiter


def reads_in_process(store: object) -> bool:
    """Whether the store's adapter declares reads that never leave the process (`reads_in_process`):
    memory or a local file, no network. Unknown adapters are assumed to block (read in a worker thread)."""
    return getattr(store, "reads_in_process", False) is True


@dataclass
class ServingState:
    """The app's collaborators. `start()` loads the champions and starts their reload threads."""

    config: ServingConfig
    backends: Backends
    key_store: ApiKeyStore
    limiter: RateLimiter
    holders: dict[str, ModelHolder]
    card_features: CardFeatures
    profiles: CustomerProfiles
    degraded: DegradedDecisions
    # reads done on the event loop (no worker-thread hop, ~0.2 ms of CPU each) when they never leave the
    # process; a remote store (DynamoDB) is read in a worker thread, so it never blocks the loop
    keys_in_process: bool = False
    features_in_process: bool = False
    _started: bool = field(default=False, init=False)
    _start_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @classmethod
    def build(
        cls,
        backends: Backends,
        config: ServingConfig,
        key_store: ApiKeyStore,
        clock: Callable[[], float] = time.monotonic,
    ) -> ServingState:
        registry = backends.model_registry

        def load(version):  # noqa: ANN001, ANN202 - a ModelVersion -> LoadedModel
            return load_version(version, backends.object_store)

        names = dict.fromkeys(
            (config.fraud_model, config.clv_model, config.segmentation_model, config.invocations_model)
        )
        holders = {n: ModelHolder(n, registry, load, config.reload_seconds) for n in names}
        return cls(
            config=config,
            backends=backends,
            key_store=key_store,
            limiter=RateLimiter(config.rate_per_second, config.rate_burst, clock),
            holders=holders,
            card_features=CardFeatures(backends.online_store, lambda: lake_card_profiles(backends.catalog)),
            profiles=CustomerProfiles(
                backends.catalog, holders[config.clv_model], holders[config.segmentation_model]
            ),
            degraded=DegradedDecisions(lambda: backends.metrics),
            keys_in_process=reads_in_process(key_store),
            features_in_process=reads_in_process(backends.online_store),
        )

    def start(self) -> None:
        """Load every champion now (once) and poll for new ones in the background."""
        with self._start_lock:
            if self._started:
                return
            for holder in self.holders.values():
                holder.start()
            self.profiles.start()  # every profile computed once now, again when a champion changes
            self._started = True

    def stop(self) -> None:
        self.profiles.stop()
        for holder in self.holders.values():
            holder.stop()
        self.degraded.flush()
        with self._start_lock:
            self._started = False

    def reload(self) -> dict[str, int | None]:
        """Check every champion now; the versions served afterwards."""
        for holder in self.holders.values():
            holder.refresh()
        self.profiles.rebuild_soon()  # new customer features are picked up too
        return {n: (h.loaded.version if h.loaded else None) for n, h in self.holders.items()}
