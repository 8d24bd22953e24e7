"""Core banking's side of a customer notice: who may get it, where it goes, and the placeholders filled.

The notifier knows tokens only. Here a token is matched to a customer of the core-banking store (an erased
customer's token matches no one: their record and token secret are gone), the customer's contact choices
are applied, and, after the text has passed its guardrails, `{first_name}` and `{card_last4}` are filled:
the first name through the vault (an audited decrypt of the protected name by the `notifier` role, for the
notice's purpose), the last four digits from the card record (kept in clear, `pan_last4`). Nothing filled
here goes back to the notifier: the filled message goes straight to the mail port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdp.corebanking.contact_preferences import ContactPreferences, ContactPreferenceStore
from cdp.oltp.port import OltpStore
from cdp.security.errors import CustomerErased
from cdp.security.protector import Protector
from cdp.security.vault import Caller, PiiVault

PLACEHOLDERS = ("{first_name}", "{card_last4}")
FRAUD_PURPOSE = "fraud-notice"
OFFER_PURPOSE = "marketing-offer"


@dataclass(frozen=True, slots=True)
class Addressee:
    """A customer a notice may go to (core banking's ids; never leaves this module's callers' process)."""

    user: int
    user_token: str
    card_index: int | None


class NoticeAddressing:
    """Matches tokens to customers, applies their choices and fills placeholders (audited)."""

    def __init__(
        self,
        oltp: OltpStore,
        protector: Protector,
        vault: PiiVault,
        preferences: ContactPreferenceStore,
        caller: Caller,
        protected_names: Callable[[], Mapping[str, str | None]],
    ) -> None:
        self.oltp = oltp
        self.protector = protector
        self.vault = vault
        self.preferences = preferences
        self.caller = caller
        self._protected_names_source = protected_names
        self._protected_names: Mapping[str, str | None] | None = None
        self._users: dict[str, int] | None = None
        self._cards: dict[str, tuple[int, int]] | None = None
        # (token, purpose) -> first name (or the reveal's error), this run only
        self._first_names: dict[tuple[str, str], str | Exception] = {}

    # -- who ------------------------------------------------------------------------------------------
    def _index(self) -> None:
        users: dict[str, int] = {}
        for customer in self.oltp.iter_customers():
            try:
                users[self.protector.user_token(customer["user"])] = customer["user"]
            except CustomerErased:
                continue
        cards: dict[str, tuple[int, int]] = {}
        known = set(users.values())
        for card in self.oltp.iter_cards():
            if card["user"] in known:
                try:
                    cards[self.protector.card_token(card["user"], card["card_index"])] = (
                        card["user"], card["card_index"],
                    )  # fmt: skip
                except CustomerErased:
                    continue
        self._users, self._cards = users, cards

    def refresh(self) -> None:
        """Forget the token index (after an erasure or a load): the next lookup rebuilds it."""
        self._users = self._cards = self._protected_names = None
        self._first_names.clear()

    def addressee(self, user_token: str, card_token: str | None = None) -> Addressee | None:
        """The customer of a token, or None when there is none any more (erased, or never known)."""
        if self._users is None:
            self._index()
        user = self._users.get(user_token)  # type: ignore[union-attr]
        if user is None or self.oltp.get_erasure(user) is not None:
            return None
        card = self._cards.get(card_token) if card_token else None  # type: ignore[union-attr]
        return Addressee(user, user_token, card[1] if card and card[0] == user else None)

    def choices(self, addressee: Addressee) -> ContactPreferences:
        return self.preferences.get(addressee.user)

    # -- what -----------------------------------------------------------------------------------------
    def recipient(self, addressee: Addressee) -> str | None:
        customer = self.oltp.get_customer(addressee.user)
        return customer.get("email") if customer else None

    def fill(self, addressee: Addressee, texts: Sequence[str], purpose: str) -> list[str]:
        """`texts` (e.g. subject and body) with their placeholders filled, decrypting the name once;
        `CustomerErased` if the customer is gone by now."""
        values: dict[str, str] = {}
        if any("{first_name}" in t for t in texts):
            values["{first_name}"] = self._first_name(addressee, purpose)
        if any("{card_last4}" in t for t in texts):
            values["{card_last4}"] = self._card_last4(addressee)
        out = []
        for text in texts:
            for placeholder, value in values.items():
                text = text.replace(placeholder, value)
            out.append(text)
        return out

    def prepare(self, addressees: Sequence[Addressee], purpose: str) -> None:
        """Decrypt the first names a batch of notices will need in one audited `reveal_many` (one audit
        record per customer, written together); `fill` then uses them, or raises the reveal's error."""
        if self._protected_names is None:
            self._protected_names = self._protected_names_source()
        wanted: dict[str, str] = {}
        for addressee in addressees:
            token = addressee.user_token
            protected = self._protected_names.get(token)
            if (token, purpose) in self._first_names or token in wanted:
                continue
            if not protected:
                self._first_names[(token, purpose)] = "customer"
            else:
                wanted[token] = protected
        if not wanted:
            return
        requests = [(token, {"person": protected}) for token, protected in wanted.items()]
        for token, outcome in zip(
            wanted, self.vault.reveal_many(self.caller, requests, purpose), strict=True
        ):
            self._first_names[(token, purpose)] = (
                outcome if isinstance(outcome, Exception) else _first_word(outcome.get("person"))
            )

    def _first_name(self, addressee: Addressee, purpose: str) -> str:
        """One audited decrypt per customer and purpose per run (a burst of notices shares it)."""
        key = (addressee.user_token, purpose)
        if key not in self._first_names:
            self.prepare([addressee], purpose)
        name = self._first_names[key]
        if isinstance(name, Exception):
            raise name
        return name

    def _card_last4(self, addressee: Addressee) -> str:
        card: dict[str, Any] | None = None
        if addressee.card_index is not None:
            card = self.oltp.get_card(addressee.user, addressee.card_index)
        return (card or {}).get("pan_last4") or "****"


def _first_word(person: str | None) -> str:
    """A name's first word, "customer" if it has none."""
    words = (person or "").split()
    return words[0] if words else "customer"
