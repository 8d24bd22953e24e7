"""Compliance-approved, versioned templates: the fixed lines, the slots a writer fills, the plain wording.

A writer never writes the subject, the reply instructions, the safety line or the legal line: those are
the template's, word for word. `render` puts slot texts into the layout; only `{first_name}`,
`{card_last4}` (filled by core banking) and the notice's reply code remain to fill. Changing any wording
means a new version: the version is recorded with every notice, so an audit knows what was approved.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.textgen.port import SlotSpec

SAFETY_LINE = {
    "en": "We will never ask for your PIN or password, by e-mail, text or phone.",
    "es": "Nunca le pediremos su PIN ni su contrasena, ni por correo, ni por mensaje, ni por telefono.",
}
PLACEHOLDERS = ("first_name", "card_last4")


@dataclass(frozen=True, slots=True)
class ApprovedTemplate:
    """One approved template in one language."""

    id: str
    version: int
    language: str
    subject: str
    slots: tuple[SlotSpec, ...]
    layout: str  # "[[slot]]" marks where a slot goes
    fallback: dict[str, str]  # the plain wording of every slot, approved with the template
    placeholders: tuple[str, ...]  # every placeholder the rendered body holds, once or more

    @property
    def key(self) -> str:
        return f"{self.id}/v{self.version}/{self.language}"

    @property
    def safety_line(self) -> str:
        return SAFETY_LINE[self.language]

    def render(self, slots: dict[str, str], reply_code: str = "") -> str:
        """The body with the slots in place (placeholders left for core banking)."""
        body = self.layout.replace("[[reply_code]]", reply_code)
        for spec in self.slots:
            body = body.replace(f"[[{spec.name}]]", slots[spec.name])
        return body


_FRAUD_SLOTS = (
    SlotSpec("greeting", 5, 80, ("first_name",), "greets the customer by first name"),
    SlotSpec("what_happened", 40, 420, ("card_last4",), "which payment looked unusual and why, calmly"),
    SlotSpec("what_to_do", 40, 320, (), "what to do: nothing if it was them, else use the app or call"),
)

FRAUD_NOTICE_EN = ApprovedTemplate(
    id="fraud-notice",
    version=1,
    language="en",
    subject="Was this you? A payment on your card ending {card_last4}",
    slots=_FRAUD_SLOTS,
    layout=(
        "[[greeting]]\n\n[[what_happened]]\n\n[[what_to_do]]\n\n"
        "Was this you? Answer in the bank's app with reply code [[reply_code]], or call the number on the "
        "back of your card.\n\n"
        f"{SAFETY_LINE['en']}\n"
        "This message is about the security of your account and is not marketing."
    ),
    fallback={
        "greeting": "Dear {first_name},",
        "what_happened": "We noticed a payment on your card ending {card_last4} that does not look like "
        "your usual spending.",
        "what_to_do": "If you made it, there is nothing to do. If not, tell us in the bank's app or call "
        "the number on the back of your card.",
    },
    placeholders=PLACEHOLDERS,
)

FRAUD_NOTICE_ES = ApprovedTemplate(
    id="fraud-notice",
    version=1,
    language="es",
    subject="Ha sido usted? Un pago con su tarjeta terminada en {card_last4}",
    slots=_FRAUD_SLOTS,
    layout=(
        "[[greeting]]\n\n[[what_happened]]\n\n[[what_to_do]]\n\n"
        "Ha sido usted? Responda en la app del banco con el codigo [[reply_code]], o llame al numero del "
        "reverso de su tarjeta.\n\n"
        f"{SAFETY_LINE['es']}\n"
        "Este mensaje trata de la seguridad de su cuenta y no es publicidad."
    ),
    fallback={
        "greeting": "Estimado/a {first_name}:",
        "what_happened": "Hemos visto un pago con su tarjeta terminada en {card_last4} que no parece suyo.",
        "what_to_do": "Si fue usted, no tiene que hacer nada. Si no, avise en la app del banco o llame al "
        "numero del reverso de su tarjeta.",
    },
    placeholders=PLACEHOLDERS,
)

OFFER_EN = ApprovedTemplate(
    id="offer",
    version=1,
    language="en",
    subject="An offer picked for you",
    slots=(
        SlotSpec("greeting", 5, 80, ("first_name",), "greets the customer by first name"),
        SlotSpec("offer_text", 30, 300, (), "the offer in one or two sentences, no pressure"),
        SlotSpec("why_you", 30, 240, (), "where to find details and how to opt out (the bank's app)"),
    ),
    layout=(
        "[[greeting]]\n\n[[offer_text]]\n\n[[why_you]]\n\n"
        f"{SAFETY_LINE['en']}\n"
        "You get this message because you agreed to hear about offers; you can stop them in the bank's app."
    ),
    fallback={
        "greeting": "Dear {first_name},",
        "offer_text": "We have an offer that may suit how you bank with us.",
        "why_you": "You can find the details, and stop these messages, in the bank's app.",
    },
    placeholders=("first_name",),
)

_TEMPLATES = {t.key: t for t in (FRAUD_NOTICE_EN, FRAUD_NOTICE_ES, OFFER_EN)}


def approved(template_id: str, language: str, version: int = 1) -> ApprovedTemplate:
    """The approved template; `KeyError` naming it when there is none (no notice without approval)."""
    key = f"{template_id}/v{version}/{language}"
    if key not in _TEMPLATES:
        raise KeyError(f"no approved template {key}")
    return _TEMPLATES[key]
