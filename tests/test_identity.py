"""Identities instead of self-declared roles: signed tokens, roles from the issuer, refusals audited.

Attacks: a token whose roles were edited (old MAC), one re-signed with another key, an expired one, a
revoked one, none at all, a token file others may read; a data scientist trying to erase, export, approve
or promote. Each is refused by the CLI with exit 3 and one line, and audited as `denied` without the
token. Also: bootstrap rules, two-person erasure, and the AWS adapter (moto's STS and a role map).
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from app.cli import app
from cdp.backends import Backends
from cdp.corebanking.erasure_requests.dynamodb import DynamoDbErasureRequests
from cdp.corebanking.erasure_requests.port import CONFIRMING, DONE, PENDING, ErasureRequest
from cdp.security.audit.dynamodb import DynamoDbAuditLog
from cdp.security.audit.keys import AuditKeys
from cdp.security.datakeys.dynamodb import create_table
from cdp.security.errors import AccessDenied, NotAuthenticated
from cdp.security.fieldcrypto import data_key_context
from cdp.security.identity import token as tokens
from cdp.security.identity.authorize import authorize
from cdp.security.identity.aws import IamIdentityProvider, role_arn
from cdp.security.identity.local import write_token_file
from cdp.security.keys.kms import create_key
from cdp.settings import Settings
from tests.identity_support import issue

REGION = "eu-west-1"


def backends() -> Backends:
    return Backends(Settings())


def cli(*args: str, identity=None, **env: str):  # noqa: ANN001, ANN201 - a click Result
    """Run `cdp ARGS` as the identity whose token file is `identity` (None: no identity)."""
    environ = {"CDP_IDENTITY_FILE": str(identity) if identity else None, **env}
    from cdp.settings import get_settings

    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), env=environ)
    finally:
        get_settings.cache_clear()


def refused_line(result) -> str:  # noqa: ANN001
    """The refusal: exit 3, exactly one line on stderr starting `refused:`, no traceback."""
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("refused: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def denials(b: Backends, action: str) -> list:
    return [r for r in b.audit.records() if r.action == action and r.outcome == "denied"]


def audit_text(b: Backends) -> str:
    return json.dumps([r.__dict__ for r in b.audit.records()], default=str)


def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _encode(claims: dict) -> str:
    raw = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# -- bootstrap and administration --------------------------------------------------------------------
def test_bootstrap_issues_one_admin_then_only_an_admin_may_issue_or_revoke(isolated_home):
    first = cli("identity", "create", "alice", "--role", "privacy-officer")
    assert "must have the admin role" in refused_line(first)
    token_file = isolated_home / "keys" / "root.token"
    made = cli("identity", "create", "root", "--role", "admin", "--out", str(token_file))
    assert made.exit_code == 0, made.output
    assert oct(token_file.stat().st_mode & 0o777) == "0o600" and token_file.read_text().startswith("cdp1.")
    assert token_file.read_text().strip() not in made.output  # written, not printed
    # a second bootstrap (no caller) is refused once any identity exists
    assert "no identity" in refused_line(cli("identity", "create", "mallory", "--role", "admin"))
    printed = cli("identity", "create", "ds", "--role", "data-scientist", identity=token_file)
    assert printed.exit_code == 0 and printed.stdout.strip().startswith("cdp1.")  # printed once
    ds_file = isolated_home / "ds.token"
    write_token_file(ds_file, printed.stdout.strip())
    # a non-admin may not issue (not even an admin for itself), list or revoke
    line = refused_line(cli("identity", "create", "eve", "--role", "admin", identity=ds_file))
    assert line == "refused: identity 'ds' (roles: data-scientist) may not identity-create: needs admin"
    refused_line(cli("identity", "revoke", "root", identity=ds_file))
    refused_line(cli("identity", "list", identity=ds_file))
    b = backends()
    assert {r.action for r in b.audit.records() if r.outcome == "denied"} == {
        "identity-create", "identity-revoke", "identity-list",
    }  # fmt: skip
    listed = json.loads(cli("identity", "list", identity=token_file).stdout)
    assert [(i["name"], i["roles"], i["issued_by"]) for i in listed] == [
        ("root", ["admin"], "bootstrap"), ("ds", ["data-scientist"], "root"),
    ]  # fmt: skip
    assert "cdp1." not in audit_text(b) and "cdp1." not in json.dumps(listed)
    # names are never reused, roles must be known
    assert "already taken" in refused_line(
        cli("identity", "create", "ds", "--role", "analyst", identity=token_file)
    )
    assert "roles must be" in refused_line(
        cli("identity", "create", "x", "--role", "god", identity=token_file)
    )


def test_whoami_names_the_caller_and_its_roles(isolated_home):
    b = backends()
    who = issue(b, "po-1", "privacy-officer", "analyst")
    result = cli("whoami", identity=who)
    assert result.exit_code == 0 and "po-1  roles: analyst, privacy-officer  (token" in result.stdout


# -- attacks on the token ------------------------------------------------------------------------------
def _forged_roles(token: str) -> str:
    claims = _payload(token)
    claims["roles"] = ["privacy-officer"]
    prefix, _, mac = token.split(".")
    return f"{prefix}.{_encode(claims)}.{mac}"  # the data scientist's own MAC over other claims


def _resigned(token: str) -> str:
    claims = _payload(token)
    claims["roles"] = ["privacy-officer"]
    claims.pop("v")
    return tokens.sign(os.urandom(32), claims)  # a well-formed token under a key that is not the platform's


@pytest.mark.parametrize(
    ("forge", "reason"),
    [(_forged_roles, "signature does not verify"), (_resigned, "signature does not verify")],
)
def test_forged_tokens_are_refused_and_audited_without_the_token(isolated_home, forge, reason):
    b = backends()
    genuine = issue(b, "ds-1", "data-scientist").read_text().strip()
    forged_file = isolated_home / "forged.token"
    write_token_file(forged_file, forge(genuine))
    line = refused_line(cli("forget", "--user", "3", identity=forged_file))
    assert reason in line and "cdp1." not in line
    (record,) = denials(b, "forget")
    assert (record.actor, record.customer_token, record.details["reason"]) == (
        "unauthenticated", "-", f"identity token {reason}",
    )  # fmt: skip
    assert forge(genuine) not in audit_text(b) and genuine not in audit_text(b)


def test_an_expired_token_is_refused(isolated_home):
    b = backends()
    issue(b, "admin")
    provider = b.identity
    provider._clock = lambda: datetime.now(UTC) - timedelta(days=3)  # issued three days ago for one day
    old = provider.issue("po-old", ["privacy-officer"], expires_days=1, issued_by="admin")
    path = isolated_home / "old.token"
    write_token_file(path, old.token)
    assert "expired" in refused_line(cli("export", "--user", "1", identity=path))
    assert denials(b, "export")[0].details["reason"] == "identity token has expired"


def test_a_revoked_identity_is_refused_on_its_next_use(isolated_home):
    b = backends()
    admin = issue(b, "admin")
    po = issue(b, "po-1", "privacy-officer")
    assert cli("whoami", identity=po).exit_code == 0
    assert cli("identity", "revoke", "po-1", identity=admin).exit_code == 0
    assert "revoked" in refused_line(cli("forget", "--user", "2", identity=po))
    assert "revoked" in refused_line(cli("whoami", identity=po))
    (revoke,) = [r for r in b.audit.records() if r.action == "identity-revoke"]
    assert (revoke.actor, revoke.outcome, revoke.details["identity"]) == ("admin", "allowed", "po-1")


def test_no_token_and_a_token_file_others_may_read_are_refused(isolated_home):
    b = backends()
    po = issue(b, "po-1", "privacy-officer")
    assert "set CDP_IDENTITY_FILE" in refused_line(cli("forget", "--user", "2"))
    po.chmod(0o644)
    assert "accessible to other users" in refused_line(cli("forget", "--user", "2", identity=po))
    assert [r.actor for r in denials(b, "forget")] == ["unauthenticated", "unauthenticated"]


# -- roles -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "action"),
    [
        (("forget", "--user", "3"), "forget"),
        (("forget", "confirm", "er_0123456789abcdef"), "forget-confirm"),
        (("export", "--user", "3"), "export"),
        (("models", "approve", "cdp-fraud", "1", "--as", "ds-1", "--reason", "mine"), "model-approve"),
        (("models", "reject", "cdp-fraud", "1", "--reason", "theirs"), "model-reject"),
        (("promote", "cdp-fraud"), "promote"),
        (("keys", "create", "app", "--scope", "fraud:score"), "api-key-create"),
        (("keys", "revoke", "k_1"), "api-key-revoke"),
    ],
)
def test_a_data_scientist_may_not_run_privileged_commands(isolated_home, args, action):
    b = backends()
    ds = issue(b, "ds-1", "data-scientist")
    line = refused_line(cli(*args, identity=ds))
    assert line.startswith(f"refused: identity 'ds-1' (roles: data-scientist) may not {action}: needs ")
    (record,) = denials(b, action)
    assert (record.actor, record.role, record.customer_token) == ("ds-1", "data-scientist", "-")


def test_sql_needs_a_querying_role(isolated_home):
    b = backends()
    po = issue(b, "po-1", "privacy-officer")
    ds = issue(b, "ds-1", "data-scientist")
    refused_line(cli("sql", "SELECT 1 AS one", identity=po))
    allowed = cli("sql", "SELECT 1 AS one", identity=ds)
    assert allowed.exit_code == 0, allowed.output
    assert "1 rows" in allowed.stdout


def test_the_removed_role_and_actor_flags_are_gone(isolated_home):
    ds = issue(backends(), "ds-1", "data-scientist")
    for args in (
        ("forget", "--user", "1", "--role", "privacy-officer"),
        ("export", "--user", "1", "--actor", "x"),
        ("models", "approve", "cdp-fraud", "1", "--as", "ds-1", "--reason", "r", "--actor", "boss"),
        ("promote", "cdp-fraud", "--actor", "promotion-gate"),
    ):
        result = cli(*args, identity=ds)
        assert result.exit_code == 2 and "No such option" in result.output


# -- two-person erasure --------------------------------------------------------------------------------------
def _customer_with_a_key(b: Backends, user: int) -> str:
    token = b.protector.user_token(user)
    fresh = b.keys.generate_data_key(data_key_context(token))
    b.data_keys.put(token, fresh.wrapped, fresh.key_version)
    return token


def test_two_person_erasure_the_requester_cannot_confirm(isolated_home):
    b = backends()
    po1, po2 = issue(b, "po-1", "privacy-officer"), issue(b, "po-2", "privacy-officer")
    ds = issue(b, "ds-1", "data-scientist")
    token = _customer_with_a_key(b, 7)
    requested = cli("forget", "--user", "7", identity=po1)
    assert requested.exit_code == 0, requested.output
    request_id = requested.stdout.split("erasure request ")[1].split()[0]
    assert request_id.startswith("er_") and b.data_keys.get(token) is not None  # nothing erased yet
    assert "two-person rule" in refused_line(cli("forget", "confirm", request_id, identity=po1))
    refused_line(cli("forget", "confirm", request_id, identity=ds))
    assert b.data_keys.get(token) is not None
    done = cli("forget", "confirm", request_id, identity=po2)
    assert done.exit_code == 0 and f"customer {token}: erased" in done.stdout
    assert b.data_keys.get(token) is None and b.data_keys.is_erased(token)
    assert "already done" in refused_line(cli("forget", "confirm", request_id, identity=po2))
    trail = [(r.action, r.actor, r.outcome) for r in b.audit.records() if r.action.startswith("forget")]
    assert trail == [
        ("forget-request", "po-1", "allowed"),
        ("forget-confirm", "po-1", "denied"),
        ("forget-confirm", "ds-1", "denied"),
        ("forget", "po-2", "allowed"),
        ("forget-confirm", "po-2", "allowed"),
        ("forget-confirm", "po-2", "denied"),
    ]
    tokens_seen = [r.customer_token for r in b.audit.records() if r.action.startswith("forget")]
    assert tokens_seen == [token, token, "-", token, token, token]  # "-": refused before any lookup


def test_one_approval_erases_at_once_when_configured(isolated_home, monkeypatch):
    monkeypatch.setenv("CDP_ERASURE_APPROVALS", "1")
    b = backends()
    po = issue(b, "po-1", "privacy-officer")
    token = _customer_with_a_key(b, 4)
    result = cli("forget", "--user", "4", identity=po)
    assert result.exit_code == 0 and f"customer {token}: erased" in result.stdout
    assert b.data_keys.is_erased(token)


def test_erasure_requests_on_dynamodb_move_only_from_the_expected_status(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="cdp-erasure-requests", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )  # fmt: skip
        store = DynamoDbErasureRequests(client, "cdp-erasure-requests")
        at = datetime(2026, 1, 2, tzinfo=UTC)
        store.add(ErasureRequest("er_1", 5, "usr_x", "po-1", at))
        assert store.get("er_1") == ErasureRequest("er_1", 5, "usr_x", "po-1", at, PENDING)
        assert store.move("er_1", PENDING, CONFIRMING, "po-2", at) is True
        assert store.move("er_1", PENDING, CONFIRMING, "po-3", at) is False  # a second confirmation loses
        assert store.move("er_1", CONFIRMING, DONE, None, None) is True
        done = store.get("er_1")
        assert (done.status, done.confirmed_by) == (DONE, "po-2") and store.get("er_2") is None


# -- AWS: the IAM principal and a role map ---------------------------------------------------------
@pytest.fixture
def aws_env(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def test_iam_principal_roles_come_from_the_role_map(aws_env):
    sts = boto3.client("sts", region_name=REGION)
    arn = sts.get_caller_identity()["Arn"]  # moto's fixed principal
    provider = IamIdentityProvider(sts, {arn: ["model-approver", "analyst"]})
    who = provider.current()
    assert (who.id, who.name, who.roles, who.kind) == (arn, arn, ("analyst", "model-approver"), "iam")
    assert provider.service("promotion-gate") == who  # in AWS each service runs as its own IAM role
    unmapped = IamIdentityProvider(sts, {"arn:aws:iam::123456789012:role/Other": ["admin"]})
    assert unmapped.current().roles == ()


def test_an_assumed_role_session_gets_its_roles_ids_stay_per_session(aws_env):
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="PrivacyOfficer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    creds = boto3.client("sts", region_name=REGION).assume_role(RoleArn=role, RoleSessionName="alice")
    c = creds["Credentials"]
    sts = boto3.client(
        "sts", region_name=REGION, aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"],
    )  # fmt: skip
    provider = IamIdentityProvider(sts, {role: ["privacy-officer"]})
    who = provider.current()
    assert who.id.endswith(":assumed-role/PrivacyOfficer/alice") and role_arn(who.id) == role
    assert who.roles == ("privacy-officer",)


def test_aws_backend_authorizes_by_iam_and_refuses_local_identity_commands(aws_env, monkeypatch):
    sts = boto3.client("sts", region_name=REGION)
    arn = sts.get_caller_identity()["Arn"]
    monkeypatch.setenv("CDP_BACKEND", "aws")
    monkeypatch.setenv("CDP_IAM_ROLE_MAP", json.dumps({arn: ["data-scientist"]}))
    b = Backends(Settings())
    # the audit log's keys and checkpoints live in the AWS homes of the key manager and data-key store
    create_key(boto3.client("kms", region_name=REGION), alias=b.settings.kms_key_id)
    create_table(boto3.client("dynamodb", region_name=REGION), f"{b.settings.dynamodb_table_prefix}data-keys")
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=b.settings.audit_checkpoint_bucket,
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )
    DynamoDbAuditLog.from_settings(b.settings, AuditKeys.generate).create_table()
    assert isinstance(b.identity, IamIdentityProvider) and b.identity.current().roles == ("data-scientist",)
    with pytest.raises(AccessDenied, match="may not forget"):
        authorize(b.identity, b.audit, "forget")
    assert denials(b, "forget")[0].actor == arn
    line = refused_line(cli("identity", "create", "x", "--role", "admin"))
    assert "IAM principals" in line
    assert "needs privacy-officer" in refused_line(cli("forget", "--user", "1"))


def test_a_role_map_with_an_unknown_role_is_rejected(aws_env):
    with pytest.raises(ValueError, match="unknown roles: superuser"):
        IamIdentityProvider(boto3.client("sts", region_name=REGION), {"arn:x": ["superuser"]})


def test_a_service_identity_must_be_issued(isolated_home):
    b = backends()
    with pytest.raises(NotAuthenticated, match="cannot be read"):
        b.identity.service("promotion-gate")
    issue(b, "promotion-gate", "model-approver", path=b.identity.service_token_path("promotion-gate"))
    assert b.identity.service("promotion-gate").roles == ("model-approver",)


def test_run_pipeline_local_needs_a_registering_role(isolated_home, monkeypatch, capsys):
    from cdp.settings import get_settings
    from pipelines.cli import run_pipeline_main

    b = backends()
    po = issue(b, "po-1", "privacy-officer")
    monkeypatch.setenv("CDP_IDENTITY_FILE", str(po))
    get_settings.cache_clear()
    assert run_pipeline_main(["--pipeline", "fraud", "--local"]) == 3
    assert capsys.readouterr().err.strip().splitlines() == [
        "refused: identity 'po-1' (roles: privacy-officer) may not model-register: needs data-scientist or "
        "ml-pipeline"
    ]
    assert [r.actor for r in denials(b, "model-register")] == ["po-1"]
