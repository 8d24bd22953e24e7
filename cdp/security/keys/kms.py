"""AWS KMS key manager: GenerateDataKey (AES_256) and Decrypt with an EncryptionContext.

KMS keeps every backing key of a rotated KMS key, so wrapped keys stay decryptable after `rotate()`
(RotateKeyOnDemand here; EnableKeyRotation rotates yearly by itself). The key version we report is
`<key arn>#r<number of rotations>`: informative (KMS ciphertext blobs name their backing key themselves),
refreshed after each `rotate()` made through this object. `rewrap` is ReEncrypt to the same key: KMS
decrypts with whichever backing key the blob names and encrypts under the current one, server side, so the
plaintext data key never reaches us. Old backing keys cannot be deleted (`retire` refuses): they live as
long as the KMS key itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cdp.security.errors import KeyAccessError, KeyRetirementUnsupported
from cdp.security.keys.port import DataKey, canonical_context

if TYPE_CHECKING:
    from cdp.settings import Settings

_ACCESS_ERRORS = {"InvalidCiphertextException", "IncorrectKeyException", "AccessDeniedException"}


class KmsKeyManager:
    """`KeyManager` over one KMS symmetric key (`key_id`: id, ARN or alias)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> KmsKeyManager:
        """The platform KMS key (`CDP_KMS_KEY_ID`) in `CDP_AWS_REGION`."""
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import AwsResources

        return cls(aws_client(settings, "kms"), AwsResources.from_settings(settings).kms_key_id)

    def __init__(self, client: Any, key_id: str) -> None:
        self.client = client
        self.key_id = key_id
        self._arn: str | None = None
        self._version: str | None = None

    def generate_data_key(self, context: dict[str, str]) -> DataKey:
        canonical_context(context)  # same validation as the local adapter
        resp = self.client.generate_data_key(KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context)
        return DataKey(
            plaintext=resp["Plaintext"], wrapped=resp["CiphertextBlob"], key_version=self._key_version()
        )

    def decrypt_data_key(self, wrapped: bytes, context: dict[str, str]) -> bytes:
        canonical_context(context)
        try:
            resp = self.client.decrypt(
                CiphertextBlob=wrapped, EncryptionContext=context, KeyId=self._key_arn()
            )
        except ClientError as e:
            raise _access_error(e, "unwrap") from None
        return resp["Plaintext"]

    @property
    def current_version(self) -> str:
        return self._key_version()

    def rewrap(self, wrapped: bytes, context: dict[str, str]) -> tuple[bytes, str]:
        canonical_context(context)
        try:
            resp = self.client.re_encrypt(
                CiphertextBlob=wrapped,
                SourceKeyId=self._key_arn(),
                SourceEncryptionContext=context,
                DestinationKeyId=self._key_arn(),
                DestinationEncryptionContext=context,
            )
        except ClientError as e:
            raise _access_error(e, "re-encrypt") from None
        return resp["CiphertextBlob"], self._key_version()

    def retire(self, in_use: set[str]) -> tuple[str, ...]:
        raise KeyRetirementUnsupported(
            "KMS keeps every rotated key material of a key for the key's life and deletes none on request; "
            "nothing to retire (schedule the deletion of a whole KMS key only once nothing is wrapped by it)"
        )

    def rotate(self) -> str:
        self.client.rotate_key_on_demand(KeyId=self._key_arn())
        self._version = None
        return self._key_version()

    def _key_arn(self) -> str:
        if self._arn is None:
            self._arn = self.client.describe_key(KeyId=self.key_id)["KeyMetadata"]["Arn"]
        return self._arn

    def _key_version(self) -> str:
        if self._version is None:
            rotations = 0
            for page in self.client.get_paginator("list_key_rotations").paginate(KeyId=self._key_arn()):
                rotations += len(page.get("Rotations", []))
            self._version = f"{self._key_arn()}#r{rotations}"
        return self._version


def _access_error(e: ClientError, what: str) -> Exception:
    code = e.response.get("Error", {}).get("Code", "")
    if code in _ACCESS_ERRORS:
        return KeyAccessError(
            f"KMS refused to {what} the data key ({code}): the encryption context differs, "
            "the key is not ours, or the blob was altered"
        )
    return e


def create_key(client: Any, alias: str | None = None) -> str:
    """Create a symmetric KMS key (and `alias`, if given); return its key id. Used by tests and setup."""
    key_id = client.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"][
        "KeyId"
    ]
    if alias:
        client.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id
