"""Secure data plane: key management, PII protection, access-checked decryption and the audit trail.

- `keys`: the key-management port (`KeyManager`) with a local keyring and an AWS KMS adapter.
- `datakeys`: the per-customer data-key store (`DataKeyStore`), SQLite or DynamoDB; deleting a key
  crypto-shreds that customer's encrypted fields.
- `protector`: the one masking module used by batch, stream and API paths (tokens, field encryption,
  coarsening, Arrow table helpers).
- `vault`: the only place that decrypts, after a role check, writing every attempt to the `audit` log.
"""
