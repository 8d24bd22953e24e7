"""Card verification (CVV) as an issuer's HSM does it: recomputed under a key, never stored."""

from cdp.security.cardverify.port import CVV2_SERVICE_CODE, CardDataError, CardVerifier

__all__ = ["CVV2_SERVICE_CODE", "CardDataError", "CardVerifier"]
