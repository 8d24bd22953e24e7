"""Who may decrypt which protected fields, and who may erase a customer.

- fraud-ops: contact fields and the card context an alert needs (name, e-mail, address, apartment,
  card expiry); the card's last four digits are already clear in `pan_last4`.
- marketing: name and e-mail only.
- data-scientist: nothing, ever.
- privacy-officer: may erase a customer (crypto-shredding), decrypts nothing.
- notifier: the customer-notice service; the name only (core banking keeps the first name of it for a
  notice's greeting; the card's last four digits are clear in `pan_last4`), nothing else.
No role may decrypt a full card number: PANs never leave core banking in clear.
"""

from __future__ import annotations

REVEAL_FIELDS: dict[str, frozenset[str]] = {
    "fraud-ops": frozenset({"person", "email", "address", "apartment", "expires"}),
    "marketing": frozenset({"person", "email"}),
    "data-scientist": frozenset(),
    "privacy-officer": frozenset(),
    "notifier": frozenset({"person"}),
}
ERASE_ROLES = frozenset({"privacy-officer"})


def allowed_fields(role: str) -> frozenset[str]:
    """The fields `role` may decrypt (empty for unknown roles)."""
    return REVEAL_FIELDS.get(role, frozenset())


def may_erase(role: str) -> bool:
    return role in ERASE_ROLES


# -- which roles may run which command (roles come from the identity, never from a flag) ----------------
ROLES = frozenset(
    {
        "admin",  # issues and revokes identities and API keys
        "api-admin",  # issues and revokes API keys
        "privacy-officer",
        "fraud-ops",
        "marketing",
        "data-scientist",
        "analyst",
        "model-approver",  # approves or rejects model versions (people, and the promotion gate service)
        "ml-pipeline",  # the training pipelines' service: registers model versions
        "notifier",  # the customer-notice service: fraud notices and campaigns
        "ml-engineer",  # reads model health (the dashboards' model page); decrypts nothing
    }
)
QUERY_ROLES = frozenset({"data-scientist", "analyst", "fraud-ops", "marketing"})
ACTION_ROLES: dict[str, frozenset[str]] = {
    "reveal": frozenset(REVEAL_FIELDS),  # the vault then checks each field against the role
    "identity-create": frozenset({"admin"}),
    "identity-revoke": frozenset({"admin"}),
    "identity-list": frozenset({"admin"}),
    "api-key-create": frozenset({"admin", "api-admin"}),
    "api-key-revoke": frozenset({"admin", "api-admin"}),
    "api-key-rotate": frozenset({"admin", "api-admin"}),
    "forget": ERASE_ROLES,
    "forget-confirm": ERASE_ROLES,
    "export": frozenset({"privacy-officer"}),
    "sql": QUERY_ROLES,
    "model-register": frozenset({"ml-pipeline", "data-scientist"}),
    "model-approve": frozenset({"model-approver"}),
    "model-reject": frozenset({"model-approver"}),
    "model-rollback": frozenset({"model-approver"}),  # approves the previous champion again
    "model-retire": frozenset({"model-approver"}),  # ends a version's life (never the champion's)
    # an evaluation on labelled external data kept in the version's model card (`cdp evaluate --record`)
    "record-evaluation": frozenset({"model-approver", "data-scientist"}),
    "promote": frozenset({"model-approver"}),
    "deploy-champion": frozenset({"model-approver"}),
    # reproduce a past fraud decision from the lake (tokens, features and scores; no PII)
    "explain": frozenset({"fraud-ops", "data-scientist", "analyst", "model-approver"}),
    "retention-purge": frozenset({"privacy-officer"}),
    "rotate-master-key": frozenset({"admin"}),
    "key-status": frozenset({"admin"}),
    # backup and restore of the platform state (cdp/backup), and the audit trail's export to a SIEM
    "backup": frozenset({"admin"}),
    "restore": frozenset({"admin"}),  # over a home that has state; an empty one: the recovery key suffices
    "recovery-key-init": frozenset({"admin"}),
    "audit-export": frozenset({"admin"}),
    "notify": frozenset({"notifier"}),
    "campaign": frozenset({"notifier"}),
}


def roles_for(action: str) -> frozenset[str]:
    """The roles that may perform `action` (KeyError for an action the policy does not know)."""
    return ACTION_ROLES[action]


# -- dashboards (`cdp dashboard`): who opens which page (row-level security as QuickSight does it) --------
DASHBOARD_PAGE_ROLES: dict[str, frozenset[str]] = {
    "fraud": frozenset({"fraud-ops"}),
    "customers": frozenset({"marketing"}),
    "models": frozenset({"ml-engineer", "data-scientist", "model-approver"}),
}
DASHBOARD_PAGE_SCOPES: dict[str, str] = {page: f"dashboard:{page}" for page in DASHBOARD_PAGE_ROLES}


def dashboard_pages(roles: tuple[str, ...] | frozenset[str], scopes: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The dashboard pages an identity with `roles` (or an API key with `scopes`) may open, in page order."""
    return tuple(
        page
        for page, allowed in DASHBOARD_PAGE_ROLES.items()
        if allowed & set(roles) or DASHBOARD_PAGE_SCOPES[page] in scopes
    )
