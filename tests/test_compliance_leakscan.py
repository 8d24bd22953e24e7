"""The leak scanner's text rules: card numbers, e-mails and known values are found; the long fraction of a
metric (a float printed with 16 decimals that happens to pass Luhn) is not a card number."""

from __future__ import annotations

from cdp.compliance.leakscan import LeakScanner, luhn_valid

CARD = "4111111111111111"  # a Luhn-valid test PAN


def _kinds(text: str, known: tuple[str, ...] = ()) -> list[str]:
    return [f.kind for f in LeakScanner(known_values=known).scan_text(text, "report.json", "text")]


def test_card_numbers_are_found_alone_quoted_or_after_a_label():
    assert luhn_valid(CARD)
    for text in (CARD, f'"{CARD}"', f"pan={CARD}", f"card.{CARD}", f"[{CARD}]"):
        assert "card_number" in _kinds(text), text


def test_a_metric_fraction_is_not_a_card_number():
    fraction = "0." + CARD  # 0.4111111111111111
    assert _kinds(f'{{"share_drifted": {fraction}}}') == []
    assert _kinds(f"psi=1.{CARD}e-05") == []


def test_e_mails_and_known_values_are_found():
    assert "email" in _kinds("contact: jane.doe@example.com")
    assert _kinds("holder Jane Q Public", known=("Jane Q Public",)) != []


def test_compressed_arrow_ipc_files_are_decoded(tmp_path):
    """Staged batch chunks are compressed Arrow IPC (zstd): a value is only visible once decoded."""
    import pyarrow as pa
    import pyarrow.ipc

    table = pa.table({"note": ["ok", f"paid with {CARD}"], "amount_cents": [1, 2]})
    path = tmp_path / "chunk.arrow"
    with (
        pa.OSFile(str(path), "wb") as sink,
        pyarrow.ipc.new_file(
            sink, table.schema, options=pyarrow.ipc.IpcWriteOptions(compression="lz4")
        ) as writer,
    ):
        writer.write_table(table)
    assert CARD.encode() not in path.read_bytes()  # compressed: a text scan would miss it
    findings = LeakScanner().scan([tmp_path])
    assert [(f.kind, f.where) for f in findings] == [("card_number", "column note")]


def test_core_banking_scan_names_cvv_columns_cvvs_next_to_their_card_and_clear_pans(tmp_path):
    import sqlite3

    from cdp.compliance.leakscan import scan_core_banking

    path = tmp_path / "oltp.sqlite3"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE cards (user INTEGER, card_index INTEGER, note TEXT, card_number_enc TEXT)")
    con.execute("CREATE TABLE extras (user INTEGER, card INTEGER, CVC2 TEXT)")
    con.execute("INSERT INTO cards VALUES (1, 0, '047', '1AbC'), (2, 0, '047', ?)", (f"memo {CARD}",))
    con.commit()
    con.close()
    cvvs = {(1, 0): "047", (2, 0): "913"}  # card (2, 0) holds another card's CVV: not its own
    found = {(f.kind, f.where) for f in scan_core_banking(path, cvvs, [CARD])}
    assert found == {
        ("cvv", "cards.note"),
        ("card_number", "table cards"),
        ("forbidden_column", "extras.CVC2"),
        ("card_number", "raw bytes"),
    }
