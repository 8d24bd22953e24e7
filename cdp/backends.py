"""The one place that picks an adapter for every port, from `settings.backend`.

Business code asks a `Backends` object for ports (`backends.object_store`, `backends.stream`, ...) and
never learns which adapter it got. Adapters are built lazily, once per `Backends`, so a command that needs
only the catalog never imports boto3 or opens the stream log.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from cdp.filemodes import make_private
from cdp.settings import Settings, get_settings

if TYPE_CHECKING:
    from cdp.alarms.port import AlarmService
    from cdp.apikeys.port import ApiKeyStore
    from cdp.backup.service import HomeState
    from cdp.catalog.port import Catalog
    from cdp.corebanking.erasure_requests.port import ErasureRequests
    from cdp.events.port import EventBus
    from cdp.feedback.port import ReplyStore
    from cdp.idempotency.port import IdempotencyIndex
    from cdp.mail.port import MailTransport
    from cdp.metrics.port import MetricsStore
    from cdp.objectstore.port import ObjectStore
    from cdp.oltp.port import OltpStore
    from cdp.online.port import OnlineStore
    from cdp.registry.port import ModelRegistry
    from cdp.scoring.port import ChampionScorer, ScoringEndpoint
    from cdp.security.audit.checkpoints.port import AuditCheckpoints
    from cdp.security.audit.port import AuditLog
    from cdp.security.cardverify.port import CardVerifier
    from cdp.security.datakeys.port import DataKeyStore
    from cdp.security.identity.port import IdentityProvider
    from cdp.security.keys.port import KeyManager
    from cdp.security.protector import Protector
    from cdp.security.vault import PiiVault
    from cdp.stream.port import EventStream
    from cdp.textgen.port import TextWriter
    from cdp.tracking.port import ExperimentTracker
    from cdp.transform.inprocess import LocalScorer
    from cdp.transform.port import BatchTransform


class Backends:
    """Ports wired to the local (embedded) or AWS adapters according to the settings."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.aws = self.settings.backend == "aws"
        self._idempotency_indexes: dict[str, IdempotencyIndex] = {}
        make_private(self.settings)

    # -- storage ------------------------------------------------------------------------------------
    @cached_property
    def object_store(self) -> ObjectStore:
        if self.aws:
            from cdp.objectstore.s3 import S3ObjectStore

            return S3ObjectStore.from_settings(self.settings)
        from cdp.objectstore.local import FolderObjectStore

        return FolderObjectStore.from_settings(self.settings)

    @cached_property
    def catalog(self) -> Catalog:
        """DuckDB over the lake folder here (through the object store's local paths), Glue + Athena in AWS."""
        if self.aws:
            from cdp.catalog.athena import GlueAthenaCatalog

            return GlueAthenaCatalog.from_settings(self.settings)
        from cdp.catalog.local import DuckDbCatalog

        return DuckDbCatalog.from_settings(self.settings, resolve=self.object_store.local_path)

    @cached_property
    def oltp(self) -> OltpStore:
        if self.aws:
            from cdp.oltp.dynamodb import DynamoDbOltpStore

            return DynamoDbOltpStore.from_settings(self.settings)
        from cdp.oltp.sqlite import SqliteOltpStore

        return SqliteOltpStore.from_settings(self.settings)

    @cached_property
    def stream(self) -> EventStream:
        if self.aws:
            from cdp.stream.kinesis import KinesisStream

            return KinesisStream.from_settings(self.settings)
        from cdp.stream.local import SqliteStreamLog

        return SqliteStreamLog.from_settings(self.settings)

    def idempotency_index(self, consumer: str) -> IdempotencyIndex:
        """The idempotency index of stream consumer `consumer` (one per consumer and `Backends`): a SQLite
        file in the state folder here, one DynamoDB table shared by every consumer in AWS."""
        if consumer not in self._idempotency_indexes:
            if self.aws:
                from cdp.idempotency.dynamodb import DynamoDbIdempotencyIndex

                index: IdempotencyIndex = DynamoDbIdempotencyIndex.from_settings(self.settings, consumer)
            else:
                from cdp.idempotency.sqlite import SqliteIdempotencyIndex

                index = SqliteIdempotencyIndex.from_settings(self.settings, consumer)
            self._idempotency_indexes[consumer] = index
        return self._idempotency_indexes[consumer]

    @cached_property
    def online_store(self) -> OnlineStore:
        """Per-key feature state: memory with a SQLite snapshot here, DynamoDB in AWS."""
        if self.aws:
            from cdp.online.dynamodb import DynamoDbOnlineStore

            return DynamoDbOnlineStore.from_settings(self.settings)
        from cdp.online.local import LocalOnlineStore

        return LocalOnlineStore.from_settings(self.settings)

    @cached_property
    def api_keys(self) -> ApiKeyStore:
        """The public API's key store (hashed keys with scopes)."""
        if self.aws:
            from cdp.apikeys.dynamodb import DynamoDbApiKeyStore

            return DynamoDbApiKeyStore.from_settings(self.settings)
        from cdp.apikeys.sqlite import SqliteApiKeyStore

        return SqliteApiKeyStore.from_settings(self.settings)

    @cached_property
    def model_registry(self) -> ModelRegistry:
        """MLflow locally, SageMaker on AWS; both audit to `audit`, opened by a decision only (reading the
        registry must not open the audit store). The local registry reads `s3://` model
        prefixes through `object_store`; the AWS registry writes its artifacts through it."""
        if self.aws:
            from cdp.registry.sagemaker_registry import SageMakerModelRegistry

            return SageMakerModelRegistry.from_settings(
                self.settings, audit=lambda: self.audit, object_store=self.object_store
            )
        from cdp.registry.mlflow_registry import MlflowModelRegistry

        return MlflowModelRegistry.from_settings(
            self.settings, audit=lambda: self.audit, object_store=self.object_store
        )

    @cached_property
    def experiment_tracker(self) -> ExperimentTracker:
        """MLflow experiments: the local store under the home here (shared with the model registry), the
        SageMaker managed MLflow tracking server `CDP_MLFLOW_TRACKING_ARN` in AWS."""
        from cdp.tracking.mlflow_tracker import MlflowExperimentTracker

        if self.aws:
            return MlflowExperimentTracker.sagemaker(self.settings)
        return MlflowExperimentTracker.local(self.settings)

    def scoring_endpoint(self, local_scorer: Callable[[], ChampionScorer]) -> ScoringEndpoint:
        """The stream handler's scoring endpoint: in AWS the SageMaker endpoint `fraud_endpoint_name`
        (`local_scorer` is not called), here `local_scorer()` in this process (the champion's encoding lives
        above the data platform, so the caller builds it)."""
        if self.aws:
            from cdp.scoring.sagemaker import SageMakerEndpoint

            return SageMakerEndpoint.from_settings(self.settings)
        from cdp.scoring.inprocess import InProcessEndpoint

        return InProcessEndpoint(local_scorer())

    def batch_transform(self, local_scorer: Callable[[], LocalScorer]) -> BatchTransform:
        """Batch scoring of feature rows: in AWS a SageMaker transform job on the inference container
        (`local_scorer` is not called), here `local_scorer()` in this process."""
        if self.aws:
            from cdp.transform.sagemaker import SageMakerTransform

            return SageMakerTransform.from_settings(self.settings, self.object_store)
        from cdp.transform.inprocess import InProcessTransform

        return InProcessTransform(local_scorer())

    # -- monitoring -----------------------------------------------------------------------------------
    @cached_property
    def metrics(self) -> MetricsStore:
        if self.aws:
            from cdp.metrics.cloudwatch import CloudWatchMetricsStore

            return CloudWatchMetricsStore.from_settings(self.settings)
        from cdp.metrics.local import SqliteMetricsStore

        return SqliteMetricsStore.from_settings(self.settings)

    @cached_property
    def alarms(self) -> AlarmService:
        """CloudWatch evaluates the alarms in AWS; here our evaluator does, over `metrics`, putting the
        state changes on `event_bus`."""
        if self.aws:
            from cdp.alarms.cloudwatch import CloudWatchAlarmService

            return CloudWatchAlarmService.from_settings(self.settings)
        from cdp.alarms.local import SqliteAlarmService

        return SqliteAlarmService.from_settings(self.settings, self.metrics, self.event_bus)

    @cached_property
    def event_bus(self) -> EventBus:
        if self.aws:
            from cdp.events.eventbridge import EventBridgeBus

            return EventBridgeBus.from_settings(self.settings)
        from cdp.events.local import SqliteEventBus

        return SqliteEventBus.from_settings(self.settings)

    # -- security -----------------------------------------------------------------------------------
    @cached_property
    def keys(self) -> KeyManager:
        if self.aws:
            from cdp.security.keys.kms import KmsKeyManager

            return KmsKeyManager.from_settings(self.settings)
        from cdp.security.keys.local import LocalKeyring

        return LocalKeyring.from_settings(self.settings)

    @cached_property
    def data_keys(self) -> DataKeyStore:
        if self.aws:
            from cdp.security.datakeys.dynamodb import DynamoDataKeyStore

            return DynamoDataKeyStore.from_settings(self.settings)
        from cdp.security.datakeys.sqlite import SqliteDataKeyStore

        return SqliteDataKeyStore.from_settings(self.settings)

    @cached_property
    def audit(self) -> AuditLog:
        # The application-level, MAC-chained audit log is kept in both modes (CloudTrail records the
        # AWS API calls beside it; it cannot tell which customer a decrypt was for). Its keys come from the
        # key manager; its signed checkpoints go to `audit_checkpoints`, apart from the log. In AWS the
        # records live in DynamoDB: nothing is written to the (ephemeral) local disk.
        from cdp.security.audit.keys import AuditKeys, load_audit_keys

        def keys() -> AuditKeys:  # loaded on first use: building the log reaches no key service
            return load_audit_keys(self.keys, self.data_keys)

        if self.aws:
            from cdp.security.audit.dynamodb import DynamoDbAuditLog

            return DynamoDbAuditLog.from_settings(self.settings, keys, self.audit_checkpoints)
        from cdp.security.audit.sqlite import SqliteAuditLog

        return SqliteAuditLog(self.settings.state_dir / "audit.sqlite", keys, self.audit_checkpoints)

    @cached_property
    def audit_checkpoints(self) -> AuditCheckpoints:
        if self.aws:
            from cdp.security.audit.checkpoints.s3 import S3Checkpoints

            return S3Checkpoints.from_settings(self.settings)
        from cdp.security.audit.checkpoints.local import LocalCheckpointFile

        return LocalCheckpointFile.from_settings(self.settings)

    @cached_property
    def protector(self) -> Protector:
        from cdp.security.protector import Protector
        from cdp.security.tokens import load_or_create_token_key

        token_key = load_or_create_token_key(self.keys, self.data_keys)
        return Protector(token_key, self.keys, self.data_keys)

    @cached_property
    def card_verifier(self) -> CardVerifier:
        if self.aws:
            from cdp.security.cardverify.aws import PaymentCryptographyVerifier

            return PaymentCryptographyVerifier.from_settings(self.settings)
        from cdp.security.cardverify.local import SoftwareHsm

        return SoftwareHsm.from_keys(self.keys, self.data_keys)

    @cached_property
    def vault(self) -> PiiVault:
        from cdp.security.vault import PiiVault

        return PiiVault(self.keys, self.data_keys, self.audit)

    @cached_property
    def identity(self) -> IdentityProvider:
        """Who is calling: the IAM principal in AWS, a signed identity token here."""
        if self.aws:
            from cdp.security.identity.aws import IamIdentityProvider

            return IamIdentityProvider.from_settings(self.settings)
        from cdp.security.identity.local import LocalIdentityProvider
        from cdp.security.identity.token import load_signing_key

        return LocalIdentityProvider.from_settings(
            self.settings, lambda: load_signing_key(self.keys, self.data_keys)
        )

    @cached_property
    def erasure_requests(self) -> ErasureRequests:
        """Pending two-person erasure requests (SQLite here, DynamoDB in AWS)."""
        if self.aws:
            from cdp.corebanking.erasure_requests.dynamodb import DynamoDbErasureRequests

            return DynamoDbErasureRequests.from_settings(self.settings)
        from cdp.corebanking.erasure_requests.sqlite import SqliteErasureRequests

        return SqliteErasureRequests.from_settings(self.settings)

    @cached_property
    def reply_store(self) -> ReplyStore:
        """Reply codes of fraud notices and the customers' answers (SQLite here, DynamoDB in AWS)."""
        if self.aws:
            from cdp.feedback.dynamodb import DynamoDbReplyStore

            return DynamoDbReplyStore.from_settings(self.settings)
        from cdp.feedback.sqlite import SqliteReplyStore

        return SqliteReplyStore.from_settings(self.settings)

    # -- backup -----------------------------------------------------------------------------------------
    @cached_property
    def home_state(self) -> HomeState:
        """The state `cdp backup` seals and `cdp restore` puts back: the home's embedded stores here. In AWS
        the services keep it (DynamoDB point-in-time recovery, S3 versioning, AWS Backup plans, multi-region
        KMS keys), so asking for it raises `BackupUnavailable`."""
        if self.aws:
            from cdp.backup.errors import BackupUnavailable

            raise BackupUnavailable(
                "with CDP_BACKEND=aws the state is backed up by AWS (DynamoDB point-in-time recovery, S3 "
                "versioning, AWS Backup plans); cdp backup copies a local home only"
            )
        from cdp.backup.service import HomeState

        return HomeState(self.settings.home)

    # -- customer notices -----------------------------------------------------------------------------
    @cached_property
    def text_writer(self) -> TextWriter:
        """Who writes notice slots (`notify_writer`): the template writer by default, Bedrock Converse, or
        an OpenAI-compatible model server; whichever, the prompt is scanned before it leaves."""
        if self.settings.notify_writer == "bedrock":
            from cdp.textgen.bedrock import BedrockWriter

            return BedrockWriter.from_settings(self.settings)
        if self.settings.notify_writer == "openai-compatible":
            from cdp.textgen.openai_compatible import OpenAiCompatibleWriter

            return OpenAiCompatibleWriter.from_settings(self.settings)
        from cdp.textgen.local import TemplateWriter

        return TemplateWriter.from_settings(self.settings)

    @cached_property
    def mail(self) -> MailTransport:
        """How notices leave (`notify_mail`): core banking's outbox of .eml files, an SMTP relay, or SNS."""
        if self.settings.notify_mail == "sns":
            from cdp.mail.sns import SnsTransport

            return SnsTransport.from_settings(self.settings)
        if self.settings.notify_mail == "smtp":
            from cdp.mail.smtp import SmtpTransport

            return SmtpTransport.from_settings(self.settings)
        from cdp.mail.outbox import OutboxTransport

        return OutboxTransport.from_settings(self.settings)
