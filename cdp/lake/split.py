"""The time split between batch history (oldest ~95%) and the real-time stream (newest ~5%).

Computed once from the source file and kept in the state folder, so the batch job and the stream
producer always agree on which rows each of them owns: a row goes to the stream iff `ts >= cutoff`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from collections.abc import Sequence
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class Split:
    source: str  # file name of the transactions source
    fraction: float  # requested stream share
    cutoff: datetime  # first timestamp of the stream part
    rows: int  # parseable rows seen when computing the split
    stream_rows: int  # of which with ts >= cutoff


def _source_name(files: Sequence[Path]) -> str:
    return files[0].name if len(files) == 1 else f"{files[0].name} (+{len(files) - 1} files)"


def compute_split(files: Sequence[Path], fraction: float) -> Split:
    """The timestamp at which the newest `fraction` of the transactions in `files` begins."""
    if not files:
        raise ValueError("no transactions file to split")
    path = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        row = con.execute(
            f"""
            WITH ts AS (
              SELECT try_strptime(concat_ws('-', "Year", "Month", "Day") || ' ' || "Time", '%Y-%m-%d %H:%M') AS ts
              FROM read_csv({path}, header = true, all_varchar = true, ignore_errors = true,
                            quote = '"', delim = ',')
            )
            SELECT quantile_disc(ts, {1.0 - fraction}) AS cutoff, count(ts) AS n FROM ts
            """
        ).fetchone()
        cutoff, n = row
        if cutoff is None:
            raise ValueError(f"{_source_name(files)}: no parseable transaction timestamps to split")
        stream_rows = con.execute(
            f"""
            SELECT count(*) FROM read_csv({path}, header = true, all_varchar = true, ignore_errors = true)
            WHERE try_strptime(concat_ws('-', "Year", "Month", "Day") || ' ' || "Time", '%Y-%m-%d %H:%M')
                  >= TIMESTAMP '{cutoff.isoformat(sep=" ")}'
            """
        ).fetchone()[0]
    finally:
        con.close()
    return Split(_source_name(files), fraction, cutoff, int(n), int(stream_rows))


def load_or_compute_split(state_file: Path, files: Sequence[Path], fraction: float) -> Split:
    """The recorded split for this source, computing and recording it on first use."""
    if state_file.exists():
        data = json.loads(state_file.read_text())
        if data["source"] == _source_name(files) and data["fraction"] == fraction:
            return Split(**{**data, "cutoff": datetime.fromisoformat(data["cutoff"])})
    split = compute_split(files, fraction)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({**asdict(split), "cutoff": split.cutoff.isoformat()}, indent=2))
    tmp.replace(state_file)
    return split
