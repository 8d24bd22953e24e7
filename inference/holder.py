"""`ModelHolder`: the current champion of one model, reloaded when the registry's champion changes.

Requests read `holder.current` (one attribute read) and keep the object they got for the whole request,
so a swap never disturbs a request in flight and no request waits for a load: the new version is loaded
off to the side, then the reference is replaced in one assignment. A background thread checks the
champion's version every `poll_seconds`; `refresh()` forces a check (the admin reload route calls it).
With `alias="challenger"` it holds the model's challenger instead (the version scored in shadow).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cdp.registry.port import CHALLENGER, CHAMPION, ModelRegistry, ModelVersion
from inference.loaded import LoadedModel

log = logging.getLogger("cdp.inference.models")


class ModelUnavailableError(RuntimeError):
    """The model has no champion (or it could not be loaded yet)."""


class ModelHolder:
    """Holds the loaded champion of `model_name` and keeps it current."""

    def __init__(
        self,
        model_name: str,
        registry: ModelRegistry,
        load: Callable[[ModelVersion], LoadedModel],
        poll_seconds: float = 30.0,
        alias: str = CHAMPION,
    ) -> None:
        if alias not in (CHAMPION, CHALLENGER):
            raise ValueError(f"a holder holds the {CHAMPION} or the {CHALLENGER}")
        self.model_name = model_name
        self.alias = alias
        self._registry = registry
        self._version_of = registry.challenger_version if alias == CHALLENGER else registry.champion_version
        self._describe = registry.challenger if alias == CHALLENGER else registry.champion
        self._load = load
        self.poll_seconds = poll_seconds
        self._current: LoadedModel | None = None
        self._refresh_lock = threading.Lock()  # one load at a time; readers never take it
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []
        self.last_error: str | None = None

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after each change of the model held (a new champion, or none any more)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception as error:  # a listener never stops the reload
                log.warning("reload listener of %s failed: %s", self.model_name, type(error).__name__)

    @property
    def current(self) -> LoadedModel:
        model = self._current
        if model is None:
            raise ModelUnavailableError(f"model {self.model_name!r} has no {self.alias} loaded")
        return model

    @property
    def loaded(self) -> LoadedModel | None:
        return self._current

    def refresh(self) -> bool:
        """Load the registry's champion if it differs from the one held; True when the model changed.

        With no champion in the registry the held model is dropped (a rejected champion stops serving).
        A failed load keeps the held model and records the error class in `last_error`.
        """
        with self._refresh_lock:
            held = self._current
            try:
                # the cheap check first: the version number only (a poll must not stall requests)
                number = self._version_of(self.model_name)
                if number is not None and held is not None and held.version == number:
                    return False
                champion = None if number is None else self._describe(self.model_name)
            except Exception as error:  # registry unreachable: keep serving what we have
                self.last_error = type(error).__name__
                log.warning("champion check failed for %s: %s", self.model_name, self.last_error)
                return False
            if champion is None:
                self._current = None
                changed = held is not None
            else:
                changed = self._swap(held, champion)
        if changed:
            self._changed()
        return changed

    def _swap(self, held: LoadedModel | None, champion: ModelVersion) -> bool:
        """Load `champion` and hold it unless it is the version held; True when the model changed."""
        if held is not None and held.version == champion.version:
            return False
        try:
            fresh = self._load(champion)
        except Exception as error:
            self.last_error = type(error).__name__
            log.warning("loading %s v%s failed: %s", self.model_name, champion.version, self.last_error)
            return False
        self._current = fresh  # the atomic swap
        self.last_error = None
        log.info("serving %s version %s", self.model_name, fresh.version)
        return True

    # -- background polling ---------------------------------------------------------------------------
    def start(self) -> None:
        """Check now, then every `poll_seconds` in a daemon thread (no thread when it is 0)."""
        self.refresh()
        if self.poll_seconds <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name=f"reload-{self.model_name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()
