"""The template writer's wording: per template, slot and language, a few variants of each slot.

Variants are format strings over the context keys (missing keys read as "unknown") and the slot's
placeholders, written with doubled braces so they survive formatting as `{first_name}`. A variant is
picked by a stable hash of the template, slot, tone and segment: the same customer kind always reads the
same words, and the writer needs no randomness.
"""

from __future__ import annotations

PHRASES: dict[tuple[str, str, str], tuple[str, ...]] = {
    # -- fraud notice ------------------------------------------------------------------------------
    ("fraud-notice", "greeting", "en"): (
        "Dear {{first_name}},",
        "Hello {{first_name}},",
        "Dear {{first_name}}, thank you for banking with us.",
    ),
    ("fraud-notice", "what_happened", "en"): (
        "We noticed a payment on your card ending {{card_last4}} that does not look like you: "
        "{amount_band} at {merchant_category}, {channel}, in the {time_of_day} ({place}). "
        "Our checks flagged it because of {reasons}.",
        "A {channel} payment of {amount_band} at {merchant_category} ({place}) was made with your card "
        "ending {{card_last4}} in the {time_of_day}. It stood out: {reasons}.",
    ),
    ("fraud-notice", "what_to_do", "en"): (
        "If this was you, there is nothing to do. If not, please tell us in the bank's app or call the "
        "number on the back of your card, and we will block the card and refund what is not yours.",
        "Please confirm in the bank's app whether you made this payment. If you did not, call the number "
        "on the back of your card straight away.",
    ),
    ("fraud-notice", "greeting", "es"): ("Estimado/a {{first_name}}:", "Hola {{first_name}}:"),
    ("fraud-notice", "what_happened", "es"): (
        "Hemos visto un pago con su tarjeta terminada en {{card_last4}} que no parece suyo: "
        "{amount_band} en {merchant_category}, {channel}, por la {time_of_day} ({place}). "
        "Nuestros controles lo marcaron por: {reasons}.",
    ),
    ("fraud-notice", "what_to_do", "es"): (
        "Si fue usted, no tiene que hacer nada. Si no, avise en la app del banco o llame al numero que "
        "figura en el reverso de su tarjeta y la bloquearemos.",
    ),
    # -- marketing offer ---------------------------------------------------------------------------
    ("offer", "greeting", "en"): ("Dear {{first_name}},", "Hello {{first_name}},"),
    ("offer", "offer_text", "en"): (
        "As one of our {segment} customers, you can now get {offer}.",
        "We picked {offer} for customers like you: it suits how you bank with us.",
    ),
    ("offer", "why_you", "en"): (
        "You can find the details and opt in or out at any time in the bank's app.",
        "Everything about this offer is in the bank's app, where you can also change your choices.",
    ),
}
