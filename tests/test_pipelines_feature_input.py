"""A Processing step's Athena input (the feature query) reaches its input folder as Parquet files written
by the catalog's engine (`Catalog.query_to_files`), under Athena's result trail first: the executor
process never holds the result, so its memory does not grow with the training set."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from cdp.catalog.local import DuckDbCatalog
from cdp.catalog.port import QueryFiles, TableInfo
from cdp.objectstore.local import FolderObjectStore
from pipelines.local.context import StepContext
from pipelines.local.errors import StepFailedError
from pipelines.local.processing import prepare_processing

TABLE = "synthetic_training_set"
LOCATION = f"s3://lake/features/{TABLE}/"
RESULTS = "s3://lake/athena-results"
INPUT = "opt_ml/processing/input/features"


def _synthetic_sql(rows: int) -> str:
    """A training set's shape: keys, split, label, 22 amounts, 18 counts, 6 categories (50 columns)."""
    columns = [
        "range AS id",
        "'card_' || (range % 50000) AS card_token",
        "CASE WHEN range % 10 < 7 THEN 'train' WHEN range % 10 < 9 THEN 'validation' ELSE 'test' END"
        " AS split",
        "(range % 997 = 0) AS is_fraud",
        *(f"random() * 1000 AS amount_{i}" for i in range(22)),
        *(f"CAST((range * {i + 7}) % 1000 AS BIGINT) AS count_{i}" for i in range(18)),
        *(f"'mcc_' || ((range * {i + 3}) % 40) AS cat_{i}" for i in range(6)),
    ]
    return f"SELECT {', '.join(columns)} FROM range({rows})"


def _lake(root: Path, rows: int) -> tuple[FolderObjectStore, DuckDbCatalog]:
    """A catalog with the synthetic table, written by DuckDB (never held by this process)."""
    store = FolderObjectStore(root / "lake", fsync=False)
    catalog = DuckDbCatalog(root / "catalog.json", store.local_path)
    folder = store.local_path(LOCATION)
    folder.mkdir(parents=True)
    with duckdb.connect() as con:
        con.execute(f"COPY ({_synthetic_sql(rows)}) TO '{folder}/part-0.parquet' (FORMAT parquet)")
        schema = con.sql(f"SELECT * FROM read_parquet('{folder}/*.parquet') LIMIT 0").to_arrow_table().schema
    catalog.register_table(TableInfo(TABLE, LOCATION, schema))
    return store, catalog


def _context(root: Path, store, query_to_files, execution_id: str = "e1") -> StepContext:
    arguments: dict[str, Any] = {
        "AppSpecification": {"ContainerEntrypoint": ["python3", "/opt/ml/processing/code/preprocess.py"]},
        "ProcessingInputs": [
            {
                "InputName": "features",
                "DatasetDefinition": {
                    "AthenaDatasetDefinition": {
                        "QueryString": f"SELECT * FROM {TABLE}",
                        "OutputFormat": "PARQUET",
                        "OutputS3Uri": RESULTS,
                    },
                    "LocalPath": "/opt/ml/processing/input/features",
                },
            }
        ],
    }
    folder = root / "runs" / execution_id / "Preprocess"
    return StepContext(
        name="Preprocess",
        arguments=arguments,
        folder=folder,
        log=folder / "Preprocess.log",
        store=store,
        query_to_files=query_to_files,
        python="python3",
        pipeline_name="p",
        execution_id=execution_id,
    )


def test_the_input_folder_receives_the_engines_files_and_athenas_trail_keeps_them(tmp_path):
    store, catalog = _lake(tmp_path, 10_000)
    ctx = _context(tmp_path, store, lambda sql, to: catalog.query_to_files(sql, to, max_rows_per_file=4096))
    first = prepare_processing(ctx)
    files = sorted((ctx.folder / INPUT).iterdir())
    assert [f.name for f in files] == ["data_0.parquet", "data_1.parquet", "data_2.parquet"]
    assert sum(pq.read_metadata(f).num_rows for f in files) == 10_000
    trail = sorted(o.uri for o in store.list(f"{RESULTS}/e1/Preprocess/"))
    assert [u.rsplit("/", 1)[-1] for u in trail] == [f.name for f in files]
    assert [store.get_bytes(u) for u in trail] == [f.read_bytes() for f in files]
    again = prepare_processing(_context(tmp_path, store, ctx.query_to_files, execution_id="e2"))
    assert again.digest == first.digest  # the same data, the same input: the step cache can hit


def test_files_the_engine_names_without_a_suffix_are_read_as_parquet(tmp_path):
    """Athena's UNLOAD names its files without `.parquet`; the step's scripts read `*.parquet`."""
    store = FolderObjectStore(tmp_path / "lake", fsync=False)

    def unload(sql: str, destination: str) -> QueryFiles:
        store.put_bytes(f"{destination}20240101_000000_00001_abcde_0", b"PAR1")
        return QueryFiles(location=destination)

    ctx = _context(tmp_path, store, unload)
    prepare_processing(ctx)
    assert [f.name for f in (ctx.folder / INPUT).iterdir()] == ["20240101_000000_00001_abcde_0.parquet"]


def test_a_failed_feature_query_fails_the_step_with_one_line(tmp_path):
    store, catalog = _lake(tmp_path, 10)

    def broken(sql: str, destination: str) -> QueryFiles:
        return catalog.query_to_files(sql.replace("*", "no_such_column"), destination)

    with pytest.raises(StepFailedError, match="input 'features': feature query failed") as failure:
        prepare_processing(_context(tmp_path, store, broken))
    assert "\n" not in str(failure.value) and "no_such_column" in str(failure.value)
    assert str(tmp_path) not in str(failure.value)  # no machine path


def _rss_bytes(key: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} in /proc/self/status")


class PeakRss:
    """This process's peak RSS while the block runs: VmRSS sampled every 10 ms, and VmHWM after resetting
    it (`/proc/self/clear_refs`) where the kernel allows."""

    def __enter__(self) -> PeakRss:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.before = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(0.01)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.hwm_reset:
            self.peak = max(self.peak, _rss_bytes("VmHWM"))

    @property
    def growth(self) -> int:
        return self.peak - self.before


@pytest.mark.slow
def test_preparing_a_large_feature_input_does_not_hold_the_result_in_the_executor(tmp_path):
    """4M rows x 50 columns: ~1.6 GB as an Arrow table. Measured at 5M rows (2.0 GB): the executor grew
    by 2.36 GB when it fetched the table, by 0.30 GB (the engine's buffers) with `query_to_files`."""
    rows = 4_000_000
    store, catalog = _lake(tmp_path, rows)
    sample = catalog.query(f"SELECT * FROM {TABLE} LIMIT 100000")
    result_bytes = sample.nbytes * rows // sample.num_rows
    del sample
    ctx = _context(tmp_path, store, catalog.query_to_files)
    with PeakRss() as rss:
        prepare_processing(ctx)
    files = sorted((ctx.folder / INPUT).glob("*.parquet"))
    assert sum(pq.read_metadata(f).num_rows for f in files) == rows and len(files) == 5
    assert rss.growth < 0.30 * result_bytes, (rss.growth >> 20, result_bytes >> 20)
