"""Key-management port (`KeyManager`) and its adapters: `local.LocalKeyring`, `kms.KmsKeyManager`."""

from cdp.security.keys.port import DataKey, KeyManager, canonical_context

__all__ = ["DataKey", "KeyManager", "canonical_context"]
