"""One settings object for the whole platform (environment variables `CDP_*`, or a `.env` file).

Everything the platform writes lives under `home`, so a run is isolated by setting `CDP_HOME`.
Read settings through `get_settings()`; never read `os.environ` for configuration elsewhere.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Platform configuration. Every field can be set with `CDP_<FIELD>` (e.g. `CDP_HOME=/data/cdp`)."""

    model_config = SettingsConfigDict(env_prefix="CDP_", env_file=".env", extra="ignore")

    # -- where and on what ----------------------------------------------------------------------
    home: Path = Field(Path(".cdp"), description="Root of all local state: data, lake, stores, logs.")
    backend: Literal["local", "aws"] = Field("local", description="Which adapters the ports use.")

    # -- synthetic data -------------------------------------------------------------------------
    users: int = Field(100, ge=1, le=100_000, description="Demo scale in users (2,000 = full size).")
    seed: int = Field(7, description="Seed for the generator and every model (reproducible runs).")
    start: date = Field(date(1991, 1, 1), description="First day of generated history.")
    end: date = Field(date(2020, 2, 28), description="Last day of generated history.")
    clv_cutoff: date = Field(
        date(2019, 3, 1), description="CLV oracle: value of the 12 months from this day on."
    )
    workers: int = Field(2, ge=1, le=64, description="Worker processes for generation and batch jobs.")

    # -- data plane -----------------------------------------------------------------------------
    stream_fraction: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="Newest share of transactions replayed through the stream (0: all history to the lake, "
        "nothing streamed).",
    )
    batch_chunk_bytes: int = Field(
        1 << 30,
        ge=64 << 10,
        description="Most bytes of source CSV per batch-job shard (the unit of work and of resume); shards "
        "are cut equal, as many as a multiple of the workers.",
    )
    stream_batch_size: int = Field(
        5000,
        ge=1,
        le=10_000,
        description="Records per stream consumer batch. The stream handler's per-card work (read, encode and "
        "write each card's online state) is per batch: larger batches touch each card once for more events.",
    )
    customers_k_anonymity: int = Field(
        5,
        ge=2,
        description="The lake's customers table is generalised until every customer shares all "
        "quasi-identifiers with at least this many customers, themselves included "
        "(cdp/security/anonymity.py).",
    )

    # -- retention (cdp/corebanking/retention.py; `cdp retention purge`) -----------------------------
    legal_hold_years: int = Field(
        5, ge=0, le=30, description="An erased customer's transactions are held this long (AML retention)."
    )
    export_ttl_days: int = Field(7, ge=1, description="Access-request export files are removed after this.")

    # -- training sets (features/training.py) ---------------------------------------------------
    training_eval_min_frauds: int | None = Field(
        100,
        ge=1,
        description="Fraud validation and test splits: newest months until this many frauds (within 15% of "
        "the labelled months each); unset: 15% of the labelled months each.",
    )

    # -- serving (the inference app; see inference/config.py) ------------------------------------
    serve_fraud_threshold: float | None = Field(
        None, ge=0, le=1, description="Fraud decision threshold (default: the champion's alert threshold)."
    )
    serve_reload_seconds: float = Field(
        30.0, ge=0, description="How often the champion is checked (0: never)."
    )
    serve_rate_per_second: float = Field(50.0, gt=0, description="Sustained requests per second per API key.")
    serve_rate_burst: int = Field(100, ge=1, description="Requests a key may send at once.")
    serve_max_batch: int = Field(1000, ge=1, description="Transactions per batch score request.")
    serve_invocations_auth: bool = Field(True, description="False inside a SageMaker container.")
    serve_invocations_model: str = Field("cdp-fraud", description="The model /invocations serves.")
    serve_reason_codes: int = Field(3, ge=0, le=20, description="Reason codes returned per score.")
    serve_event_max_future_seconds: float = Field(
        86_400.0,
        ge=0,
        description="Transactions dated further than this after now are refused (422 / stream quarantine).",
    )
    serve_event_earliest: date = Field(
        date(1990, 1, 1),
        description="Transactions dated before this are refused (422 / stream quarantine).",
    )
    api_key_expiry_days: int = Field(
        90,
        ge=0,
        le=3660,
        description="Days a new or rotated API key is valid (0: never).",
    )
    api_key_rotation_overlap_hours: float = Field(
        24.0, ge=0, le=24 * 90, description="Hours the old secret of a rotated API key stays valid."
    )
    serve_body_limit_bytes: int = Field(64 << 10, ge=1, description="Body limit of routes not listed below.")
    serve_score_body_limit_bytes: int = Field(256 << 10, ge=1, description="Body limit of /v1/fraud/score.")
    serve_batch_body_limit_bytes: int = Field(2 << 20, ge=1, description="Body limit of the batch score.")
    serve_invocations_body_limit_bytes: int = Field(6 << 20, ge=1, description="Body limit of /invocations.")
    serve_max_headers: int = Field(100, ge=8, description="Header lines per request (431 beyond).")
    serve_max_header_bytes: int = Field(16 << 10, ge=1024, description="Bytes of all headers (431 beyond).")
    serve_request_timeout_seconds: float = Field(
        30.0, gt=0, description="A request still running then is answered 504 and its work cancelled."
    )
    serve_max_concurrency: int = Field(
        256, ge=1, description="Requests in flight per worker, /ping not counted (503 + Retry-After beyond)."
    )
    serve_max_connections: int = Field(1024, ge=1, description="Open connections per worker (uvicorn).")
    serve_keep_alive_seconds: float = Field(5.0, gt=0, description="Idle keep-alive connections close then.")
    serve_feature_magnitude: float = Field(
        1e15, gt=0, description="/invocations: largest |value| of a feature when the model has no ranges."
    )
    serve_hsts_seconds: int = Field(
        0, ge=0, description="Strict-Transport-Security max-age, for an API served behind TLS (0: not sent)."
    )
    serve_client_address: Literal["plain", "hashed"] = Field(
        "hashed", description="Client address in the access log: as it is, or an HMAC-SHA256 of it."
    )
    serve_client_address_key: SecretStr | None = Field(
        None, description="Key of hashed client addresses (unset: a random key per server process)."
    )
    inference_image_uri: str | None = Field(
        None,
        description="ECR URI of this project's inference image (inference/Dockerfile); the pipelines "
        "register their models to run in it. Unset: the stock framework image (no reason codes, no CSV "
        "header, no raw categories).",
    )

    # -- monitoring loop (monitoring/; `cdp monitor run`) ----------------------------------------
    monitor_models: tuple[str, ...] = Field(("cdp-fraud",), description="Models the drift job watches.")
    monitor_window_days: int = Field(30, ge=1, description="Drift window: days of event time.")
    monitor_sample_size: int = Field(5000, ge=100, description="Rows sampled per side for the drift tests.")
    monitor_numerical_threshold: float = Field(
        0.25, gt=0, description="PSI above which a numeric column has drifted."
    )
    monitor_categorical_threshold: float = Field(
        0.25, gt=0, description="PSI above which a categorical column has drifted."
    )
    monitor_feature_drift_share: float = Field(
        0.3, gt=0, le=1, description="Alarm: share of monitored columns drifted above this."
    )
    monitor_score_psi: float = Field(0.25, gt=0, description="Alarm: PSI of the model's score above this.")
    monitor_retrain_cooldown_seconds: float = Field(
        6 * 3600, ge=0, description="At most one drift-triggered retraining per model in this time."
    )
    monitor_performance_lookback_months: int = Field(
        12, ge=1, description="Months of scored data for the delayed-label performance."
    )
    monitor_alert_budget: float = Field(0.005, gt=0, lt=1, description="Share of events alerted.")
    monitor_labelled_pr_auc_ratio: float = Field(
        0.7,
        gt=0,
        le=1,
        description="Alarm: champion's labelled PR-AUC below this share of its evaluated one.",
    )
    monitor_performance_min_frauds: int = Field(
        30,
        ge=1,
        description="Fraud labels a performance window needs before its PR-AUC ratio is published.",
    )

    # -- promotion gate (monitoring/promotion; `cdp promote`): the rest of its policy in its policy.py
    promotion_fraud_pr_auc_margin: float = Field(
        0.005, description="Fraud candidate's PR-AUC must beat the champion's by this on the same holdout."
    )
    promotion_clv_mae_ratio_margin: float = Field(
        0.01, description="CLV candidate's MAE ratio must be this share below the champion's."
    )
    promotion_segmentation_silhouette_margin: float = Field(
        -0.02, description="Segmentation candidate's silhouette vs the champion's (negative: a small loss)."
    )
    promotion_min_fraud_pr_auc: float = Field(0.10, ge=0, le=1, description="Fraud PR-AUC floor.")
    promotion_max_fraud_brier: float = Field(0.05, gt=0, description="Fraud calibration: Brier score limit.")
    promotion_max_fraud_ece: float = Field(0.05, gt=0, description="Fraud calibration: ECE limit.")
    promotion_max_latency_p99_ms: float = Field(
        50.0, ge=0, description="p99 CPU ms of single-row scoring through the serving code path."
    )
    promotion_min_holdout_rows: int = Field(500, ge=1, description="Fewer holdout rows: no decision.")
    promotion_min_holdout_positives: int = Field(20, ge=1, description="Fewer labelled frauds: no decision.")

    # -- analyst SQL (`cdp sql`, notebooks: `Catalog.analyst_query`, a read-only sandbox) ------------
    analyst_memory_limit: str = Field(
        "2GB", pattern=r"^[0-9]+(\.[0-9]+)?\s*[KMGT]i?B$", description="DuckDB memory per analyst query."
    )
    analyst_threads: int = Field(2, ge=1, le=64, description="DuckDB threads per analyst query.")
    analyst_timeout_seconds: float = Field(300.0, gt=0, description="An analyst query is stopped after this.")
    analyst_max_rows: int = Field(1_000_000, ge=1, description="Larger analyst results are refused.")
    analyst_max_sql_chars: int = Field(100_000, ge=1, description="Longer analyst SQL is refused.")
    athena_analyst_workgroup: str = Field(
        "cdp-analyst", description="Athena workgroup of analyst queries (AWS backend)."
    )

    # -- identities and separation of duties (cdp/security/identity) ----------------------------
    identity_file: Path | None = Field(
        None,
        description="File (mode 0600) holding the caller's identity token, issued by `cdp identity create "
        "--out`; local mode only (in AWS the caller is its IAM principal).",
    )
    iam_role_map: dict[str, list[str]] = Field(
        default_factory=dict,
        description="AWS mode: roles per IAM principal or role ARN, JSON, e.g. "
        '{"arn:aws:iam::123456789012:role/PrivacyOfficer": ["privacy-officer"]}.',
    )
    erasure_approvals: int = Field(
        2,
        ge=1,
        le=2,
        description="Privacy officers needed to erase a customer: 2 = one requests, another confirms.",
    )

    demo_drift: Literal["amount-shift", "fraud-pattern", "none"] = Field(
        "fraud-pattern", description="Drift the demo injects into the stream's second half."
    )

    # -- AWS (used only when backend == "aws") --------------------------------------------------
    aws_region: str = Field("eu-west-1", description="AWS region of every AWS adapter.")
    aws_endpoint_url: str | None = Field(
        None,
        description="One endpoint for every AWS client (e.g. a local AWS emulator, http://127.0.0.1:5000); "
        "unset: each service's AWS endpoint in CDP_AWS_REGION (cdp/aws_clients.py).",
    )
    kms_key_id: str = Field("alias/cdp-pii", description="KMS key that wraps per-customer data keys.")
    lake_bucket: str = Field("cdp-lake", description="S3 bucket (or local folder) of the data lake.")
    stream_name: str = Field("cdp-transactions", description="Kinesis stream (or local log) name.")
    dynamodb_table_prefix: str = Field("cdp-", description="Prefix of the core-banking tables.")
    event_bus_name: str = Field("default", description="EventBridge bus of the monitoring rules.")
    fraud_endpoint_name: str = Field(
        "cdp-fraud",
        description="SageMaker endpoint the stream handler scores with (the inference container).",
    )
    endpoint_instance_type: str = Field(
        "ml.m5.large",
        description="Instance type of the endpoints the deploy step creates (`python -m monitoring.deploy`).",
    )
    endpoint_max_instances: int = Field(
        4, ge=1, description="Autoscaling ceiling of an endpoint's variant (the deploy step's floor: 1)."
    )
    endpoint_invocations_per_instance: float = Field(
        1000.0, gt=0, description="Autoscaling target: invocations per instance per minute."
    )
    audit_checkpoint_bucket: str = Field(
        "cdp-audit-checkpoints", description="S3 bucket (Object Lock) of the audit log's signed checkpoints."
    )
    audit_table: str = Field(
        "cdp-audit",
        description="DynamoDB table of the audit log's records (AWS backend); its checkpoints go to "
        "CDP_AUDIT_CHECKPOINT_BUCKET.",
    )
    card_verification_key_arn: str = Field(
        "alias/cdp-card-verification",
        description="AWS Payment Cryptography CVK (key ARN or alias) that generates and verifies CVVs.",
    )

    # -- batch scoring and evaluation (`cdp score`, `cdp evaluate`) ------------------------------
    score_reasons: Literal["alerts", "all", "none"] = Field(
        "alerts",
        description="Batch scoring: reason codes (exact SHAP) for alerted rows only, every row, or none.",
    )
    transform_role_arn: str | None = Field(
        None, description="AWS mode: IAM role ARN the SageMaker transform job of `cdp score` runs as."
    )
    transform_instance_type: str = Field("ml.m5.xlarge", description="Instance type of the transform job.")
    transform_poll_seconds: float = Field(15.0, gt=0, description="How often the transform job is checked.")
    evaluate_episode_gap_hours: float = Field(
        72.0, gt=0, description="Evaluation: frauds of a card further apart than this start a new episode."
    )
    evaluate_bootstrap_rounds: int = Field(
        200, ge=0, description="Evaluation: bootstrap resamples of fraud episodes for confidence intervals."
    )
    # -- backup and restore (cdp/backup; `cdp backup`, `cdp restore`) ---------------------------------
    recovery_key_file: Path | None = Field(
        None,
        description="File (mode 0600, outside CDP_HOME) holding the recovery key that seals backups, made "
        "by `cdp backup init-recovery-key`; keep a copy offline: without it no backup opens.",
    )

    # -- service-level objectives (monitoring/slo.py; `cdp monitor slo`) ------------------------------
    slo_window_days: int = Field(30, ge=1, le=365, description="Window of every SLO's error budget.")
    slo_event_to_alert_seconds: float = Field(
        5.0, gt=0, description="A stream event is decided (scored, alert raised) within this of arriving."
    )
    slo_event_to_alert_target: float = Field(
        0.99, gt=0, lt=1, description="Share of stream events decided within CDP_SLO_EVENT_TO_ALERT_SECONDS."
    )
    slo_api_availability_target: float = Field(
        0.999, gt=0, lt=1, description="Share of API requests answered without a server error (5xx)."
    )
    slo_api_latency_ms: float = Field(300.0, gt=0, description="API latency objective (milliseconds).")
    slo_api_latency_target: float = Field(
        0.99, gt=0, lt=1, description="Share of API requests answered within CDP_SLO_API_LATENCY_MS (p99)."
    )
    slo_batch_freshness_hours: float = Field(
        26.0, gt=0, description="The batch lake's newest landing is at most this old (a daily batch + slack)."
    )
    slo_stream_freshness_minutes: float = Field(
        15.0, gt=0, description="The stream's newest scored landing is at most this old."
    )
    slo_freshness_target: float = Field(
        0.99, gt=0, lt=1, description="Share of freshness checks within their limit."
    )
    # -- customer notices and campaigns (engagement/, cdp/textgen, cdp/mail; `cdp notify run`) --------
    notify_writer: Literal["template", "bedrock", "openai-compatible"] = Field(
        "template",
        description="Who writes the slots of a notice: the deterministic template writer (no network), "
        "Bedrock Converse, or an OpenAI-compatible model server (CDP_TEXTGEN_URL).",
    )
    bedrock_model_id: str = Field(
        "anthropic.claude-3-haiku-20240307-v1:0", description="Bedrock model the Converse calls name."
    )
    bedrock_region: str | None = Field(None, description="Bedrock's region (unset: CDP_AWS_REGION).")
    bedrock_guardrail_id: str | None = Field(None, description="Bedrock guardrail applied to every call.")
    bedrock_guardrail_version: str = Field("DRAFT", description="Version of the Bedrock guardrail.")
    textgen_url: str | None = Field(None, description="Base URL of an OpenAI-compatible model server.")
    textgen_model: str = Field("bank-writer", description="Model name sent to that server.")
    textgen_api_key: SecretStr | None = Field(None, description="Bearer key of that server, if it needs one.")
    textgen_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one model-server call.")
    notify_mail: Literal["outbox", "smtp", "sns"] = Field(
        "outbox",
        description="How notices leave: .eml files in core banking's outbox, an SMTP relay, or SNS.",
    )
    mail_from: str = Field("alerts@bank.example", description="Sender address of customer notices.")
    smtp_host: str = Field("127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP relay port.")
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_username: str | None = Field(None, description="SMTP login (unset: no AUTH).")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one SMTP conversation.")
    sns_topic_arn: str | None = Field(None, description="SNS topic customer notices are published to.")
    notify_episode_minutes: int = Field(
        60, ge=1, description="Alerts of one card this close in event time make one episode: one notice."
    )
    notify_max_per_customer_per_day: int = Field(
        2, ge=1, description="Most fraud notices a customer gets per day (event time); the rest are capped."
    )
    notify_send_attempts: int = Field(4, ge=1, le=20, description="Tries per notice before dead-lettering.")
    notify_retry_base_seconds: float = Field(0.5, ge=0, description="First retry delay (doubles per try).")
    notify_language: str = Field("en", pattern=r"^[a-z]{2}$", description="Language of notices.")

    # -- dashboards (the BI app over the aggregate tables; `cdp dashboard`) ----------------------------
    dashboard_host: str = Field("127.0.0.1", description="Address `cdp dashboard` binds (this machine only).")
    dashboard_port: int = Field(8501, ge=1, le=65535, description="Port of `cdp dashboard`.")
    dashboard_refresh: bool = Field(
        True,
        description="Rebuild the dashboards' aggregate tables at the end of the batch job, the stream "
        "landing, the stream scoring and the monitor run (a failed refresh is logged, never fatal).",
    )
    dashboard_min_customers: int = Field(
        5, ge=2, description="Customer aggregates: a cell of fewer customers is not shown (nor stored)."
    )
    # -- experiment tracking (cdp/tracking: notebooks' training runs and `run-pipeline --local`) --------
    mlflow_tracking_arn: str | None = Field(
        None,
        description="AWS backend: the SageMaker managed MLflow tracking server ARN experiments are logged "
        "to. Locally they go to the MLflow store under the home (`<home>/state/mlflow.db`).",
    )
    mlflow_ui_port: int = Field(5000, ge=1, le=65535, description="Port of `cdp mlflow ui` (on 127.0.0.1).")

    # -- online state rebuilt from the lake (`cdp features sync-online`) ---------------------------
    online_sync_rows_per_bucket: int = Field(
        8_000_000,
        ge=1,
        description="Online-state rebuild: lake rows per set of cards built at once (more: faster, more RAM)",
    )
    # -- challenger in shadow before the switch, and the approval policy ----------------------------------
    shadow_min_events: int = Field(
        1000, ge=0, description="Shadow events a challenger needs before its comparison decides (0: none)."
    )
    shadow_min_hours: float = Field(
        24.0, ge=0, description="Hours a challenger runs in shadow before its comparison decides (0: none)."
    )
    shadow_max_alert_rate_change: float = Field(
        0.5,
        ge=0,
        description="Largest relative change of the alert rate, challenger vs champion on the same events "
        "(0.5: from half to one and a half times the champion's).",
    )
    shadow_min_agreement: float = Field(
        0.95, ge=0, le=1, description="Smallest share of shadow events where both models decide alike."
    )
    shadow_max_pr_auc_drop: float = Field(
        0.02,
        ge=0,
        description="A labelled PR-AUC below the champion's by more than this is a metric drop: the switch "
        "then needs a named person's approval.",
    )
    shadow_min_labelled_frauds: int = Field(
        5, ge=1, description="Fewer labelled frauds among shadow events: no PR-AUC comparison yet."
    )
    demo_shadow_min_events: int = Field(
        50, ge=0, description="The demo's shadow volume (short, so a small demo reaches its switch)."
    )
    demo_shadow_min_hours: float = Field(0.0, ge=0, description="The demo's shadow period in hours.")
    # -- model governance: model cards, inventory, fairness (cdp/registry/model_card.py,
    #    monitoring/promotion/fairness.py; `cdp models card | inventory`) -------------------------------
    model_review_days: int = Field(
        365,
        ge=1,
        le=3660,
        description="Days from a version's last validation to its next review.",
    )
    model_owners: dict[str, str] = Field(
        default_factory=dict,
        description='Owning team per model, JSON, e.g. {"cdp-fraud": "fraud-analytics"}; unset models get '
        "the platform's default owner for their kind.",
    )
    source_data_synthetic: bool | None = Field(
        None,
        description="Whether source files not written by `cdp generate` are synthetic (IBM's public set is); "
        "the model cards state it. Generated data is known to be synthetic.",
    )
    fairness_max_ratio: float = Field(
        1.25, ge=1, description="A group's rate over the overall rate above this fails the fairness gate."
    )
    fairness_min_ratio: float = Field(
        0.8,
        gt=0,
        le=1,
        description="A group's rate over the overall rate below this fails the gate.",
    )
    fairness_confidence: float = Field(
        0.95,
        gt=0.5,
        lt=1,
        description="A group fails only when its ratio's interval at this confidence is wholly outside the "
        "limits (small groups are not failed on noise).",
    )
    fairness_min_group_customers: int = Field(
        30,
        ge=1,
        description="Smaller groups are counted, not judged, their rates not shown.",
    )
    fairness_gate_segments: bool = Field(
        False,
        description="Gate segment composition by group too (default: measured and shown in the card only; "
        "segments describe behaviour, which may differ by age without any protected input).",
    )
    # -- dashboards: month-by-month refresh of the aggregate tables (cdp/aggregates/incremental.py) ----
    dashboard_incremental: bool = Field(
        True,
        description="Refresh an aggregate table by recomputing only the months whose source files changed "
        "since its last build (false: every refresh rebuilds it from the whole lake).",
    )
    dashboard_incremental_max_mb: float = Field(
        512,
        gt=0,
        description="A refresh whose changed months hold more source files than this (MB) rebuilds the "
        "table in full inside the catalog's engine instead of reading those months in-process.",
    )

    # -- feature refresh: recompute only the changed months of an event view (features/refresh.py) ------
    features_refresh_max_months: int = Field(
        12,
        ge=1,
        description="At most this many months (from the oldest changed one to the newest) are recomputed "
        "in place by `cdp features build`; a change further back rebuilds the whole features table.",
    )

    # -- customer notices: group commit of deliveries (engagement/notifier.py, cdp/mail/outbox.py) ------
    notify_send_batch: int = Field(
        64,
        ge=1,
        le=1000,
        description="Pending notices delivered together: their names decrypted in one audited call, their "
        "e-mails made durable with one sync (outbox), their outcomes marked in one transaction. Transports "
        "that cannot take a batch (SMTP, SNS) still send and mark one message at a time.",
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @field_validator("aws_endpoint_url", mode="before")
    @classmethod
    def _unset_endpoint(cls, v: object) -> object:
        return None if v == "" else v  # an empty CDP_AWS_ENDPOINT_URL means AWS's own endpoints

    @field_validator("mlflow_tracking_arn", mode="before")
    @classmethod
    def _unset_tracking_arn(cls, v: object) -> object:
        return None if v == "" else v

    @field_validator("identity_file", "recovery_key_file", mode="before")
    @classmethod
    def _unset_identity_file(cls, v: object) -> object:
        return None if v == "" else v  # an empty CDP_IDENTITY_FILE means no identity, not the folder "."

    # -- derived paths under home (one place decides the layout) --------------------------------
    @property
    def data_dir(self) -> Path:
        """Source CSVs (generated, or the real files dropped in)."""
        return self.home / "data"

    @property
    def ground_truth_dir(self) -> Path:
        """The generator's hidden truth; only evaluation code reads it."""
        return self.data_dir / "ground_truth"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def state_dir(self) -> Path:
        """Embedded stores: OLTP, stream log, keyring, audit log, registry."""
        return self.home / "state"

    @property
    def identities_dir(self) -> Path:
        """Identity token files of the platform's services (and the demo's people), mode 0600."""
        return self.home / "identities"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
