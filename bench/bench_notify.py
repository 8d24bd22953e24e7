"""Customer notices: fraud-alert episodes composed (template writer, guardrails, approved template), filled
by core banking (audited decrypt of the name) and sent to the outbox, per second and p99 per notice.

Baseline: the approved template's plain wording with the placeholders replaced by clear values kept in
memory, written as .eml files straight to a folder: no writer, no guardrails, no ledger, no vault, no audit.
The floor of writing one e-mail file per notice. Ratio = notifier notices/s / baseline notices/s.
Target: >= 500 notices/s on one core. Delivery runs in batches (`--batch`, group commit): a notice's p99
is its composition plus its batch's time divided by the batch's size. A value that does not apply is null.
On a shared machine, wall time includes the wait for a core: "notices/s less core wait" removes it
(Linux scheduler statistics), leaving the CPU work and the waits on the disk.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import measure, print_table, write_result

CUSTOMERS = 500
EPISODES_PER_CUSTOMER = 4  # a day apart: one notice each, under the daily cap


def _world(home: Path, customers: int):  # noqa: ANN202 - (Backends, names, alerts)
    os.environ["CDP_HOME"] = str(home)
    from cdp.settings import get_settings

    get_settings.cache_clear()
    from datetime import datetime, timedelta

    from cdp.backends import Backends
    from cdp.corebanking.cards import card_for_store
    from engagement.context import Alert

    b = Backends()
    b.oltp.upsert_customers(
        [
            {"user": u, "person": f"Person{u} Surname", "email": f"user{u}@example.com"}
            for u in range(customers)
        ]
    )
    pans = [f"4{u:014d}" for u in range(customers)]
    b.oltp.upsert_cards([card_for_store(b.protector, {"user": u, "card_index": 0, "card_number": pans[u]})
                         for u in range(customers)])  # fmt: skip
    names, alerts = {}, []
    t0 = datetime(2019, 11, 1, 8, 0)
    for u in range(customers):
        token, card = b.protector.user_token(u), b.protector.card_token(u, 0)
        names[token] = b.protector.encrypt_field(token, "person", f"Person{u} Surname")
        for day in range(EPISODES_PER_CUSTOMER):
            alerts.append(
                Alert(
                    f"{card[-8:]}-{day}",
                    token,
                    card,
                    t0 + timedelta(days=day, minutes=u % 600),
                    12_345 + u,
                    5411,
                    "swipe",
                    "CA",
                    0.9,
                    ("amount_z", "is_new_merchant"),
                )  # fmt: skip
            )
    return b, names, alerts


def _notifier(b, names, batch: int = 64):  # noqa: ANN001, ANN202
    from cdp.corebanking.contact_preferences import ContactPreferenceStore
    from cdp.corebanking.notices import NoticeAddressing
    from cdp.mail.outbox import OutboxTransport, outbox_dir
    from cdp.security.vault import Caller
    from engagement.compose import Composer
    from engagement.ledger import Ledger
    from engagement.notifier import Notifier, NotifyConfig
    from engagement.templates import FRAUD_NOTICE_EN

    prefs = ContactPreferenceStore.from_settings(b.settings)
    caller = Caller("notifier-bench", "notifier")
    addressing = NoticeAddressing(b.oltp, b.protector, b.vault, prefs, caller, lambda: names)
    return Notifier(Ledger(b.settings.state_dir / "notifier.sqlite"), Composer(b.text_writer), addressing,
                    OutboxTransport(outbox_dir(b.settings)), FRAUD_NOTICE_EN,
                    NotifyConfig(send_batch=batch))  # fmt: skip


def _timed(notifier) -> dict[str, list[float]]:  # noqa: ANN001
    """Wrap the notifier's steps; the lists fill with each notice's wall and CPU seconds: its composition,
    then its share of its delivery batch (the batch's time / its size: a batch is handed over and marked
    together, so its notices are done at the same moment)."""
    spent: dict[str, list[float]] = {"wall": [], "cpu": []}
    real_compose, real_deliver = notifier._new_episode, notifier._deliver_batch

    def compose(*args):  # noqa: ANN002, ANN202
        t, c = time.perf_counter(), time.thread_time()
        out = real_compose(*args)
        spent["wall"].append(time.perf_counter() - t)
        spent["cpu"].append(time.thread_time() - c)
        return out

    def deliver(notices):  # noqa: ANN001, ANN202
        t, c = time.perf_counter(), time.thread_time()
        out = real_deliver(notices)
        n = max(len(notices), 1)
        spent["wall"].extend([(time.perf_counter() - t) / n] * len(notices))
        spent["cpu"].extend([(time.thread_time() - c) / n] * len(notices))
        return out

    notifier._new_episode, notifier._deliver_batch = compose, deliver
    return spent


def _baseline(folder: Path, alerts: list) -> None:
    from cdp.mail.mime import to_bytes
    from cdp.mail.port import MailMessage
    from engagement.templates import FRAUD_NOTICE_EN

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(alerts)):
        body = FRAUD_NOTICE_EN.render(FRAUD_NOTICE_EN.fallback, "ABCD-EFGH")
        body = body.replace("{first_name}", "Person").replace("{card_last4}", "1234")
        message = MailMessage(f"base-{i:08d}", "user@example.com", "alerts@bank.example",
                              FRAUD_NOTICE_EN.subject.replace("{card_last4}", "1234"), body)  # fmt: skip
        (folder / f"{message.message_id}.eml").write_bytes(to_bytes(message))


def _cpu(fn) -> dict[str, Any]:  # noqa: ANN001
    """`fn()`'s result, the CPU seconds (user + system) this thread spent in it, and the seconds it waited
    for a core (Linux scheduler statistics; None elsewhere): a shared machine's wall time also counts
    that wait, and the process's CPU time the harness's memory sampler."""
    c, q = time.thread_time(), _queued()
    out = fn()
    q_end = _queued()
    return {"out": out, "cpu": time.thread_time() - c, "queued": None if q is None else q_end - q}


def _queued() -> float | None:
    """Seconds this thread has spent runnable but waiting for a core, or None where unknown."""
    try:
        fields = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat").read_text().split()
        return int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench notify")
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--batch", type=int, default=64, help="notices handed over and marked together")
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory() as tmp:
        b, names, alerts = _world(Path(tmp) / "home", args.customers)
        notifier = _notifier(b, names, args.batch)
        spent = _timed(notifier)
        ours = measure("notifier (template writer, outbox)", lambda: _cpu(lambda: notifier.run(alerts)))
        base = measure(
            "baseline (plain template -> .eml)", lambda: _cpu(lambda: _baseline(Path(tmp) / "base", alerts))
        )
        report = ours.extra["out"]
        sent = len(list((b.settings.home / "corebanking" / "outbox").glob("*.eml")))
    n = report.notices

    def p99_ms(kind: str) -> float | None:
        steps = np.asarray(spent[kind])
        per_notice = steps[:n] + steps[n : 2 * n] if len(steps) >= 2 * n else steps
        return float(np.percentile(per_notice, 99) * 1000) if len(per_notice) else None

    rate, base_rate = n / ours.seconds, len(alerts) / base.seconds
    queued = ours.extra["queued"]
    unqueued_rate = n / (ours.seconds - queued) if queued is not None else None
    cpu_rate, base_cpu_rate = n / ours.extra["cpu"], len(alerts) / base.extra["cpu"]
    rows = [
        {"run": ours.label, "notices": n, "sent": sent, "wall s": ours.seconds, "notices/s": rate,
         "notices/CPU-s": cpu_rate, "notices/s less core wait": unqueued_rate,
         "core wait s": queued, "p99 wall ms": p99_ms("wall"), "p99 CPU ms": p99_ms("cpu"),
         "peak MB": ours.peak_memory_bytes / 2**20},
        {"run": base.label, "notices": len(alerts), "sent": len(alerts), "wall s": base.seconds,
         "notices/s": base_rate, "notices/CPU-s": base_cpu_rate, "notices/s less core wait": None,
         "core wait s": None, "p99 wall ms": None,
         "p99 CPU ms": None, "peak MB": base.peak_memory_bytes / 2**20},
    ]  # fmt: skip
    ratio = cpu_rate / base_cpu_rate
    print_table(f"Customer notices (notifier / baseline per CPU-second = {ratio:.2f}; target >= 500/s)", rows)
    result = {
        "customers": args.customers,
        "batch": args.batch,
        "rows": rows,
        "ratio_cpu": ratio,
        "fallbacks": report.fallbacks,
    }
    write_result("notify", result)
    return result


if __name__ == "__main__":
    main()
