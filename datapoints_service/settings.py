"""datapoints_service's settings (servicekit.settings loads and checks them at start).

The suite-wide ones (`SERVICE_SECRET`, `AUTH_SERVICE_URL`, `REDIS_URL`, ...) are
servicekit's Flask config, not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.settings import setting

MIB = 1024 * 1024


@dataclass(frozen=True)
class DatapointsSettings:
    # Rows fetched from the database per round while a CSV answer streams.
    csv_batch_rows: int = setting("DATAPOINTS_CSV_BATCH_ROWS", 1000, minimum=1, maximum=100_000)
    # The largest CSV file an upload may hold (its bytes, or doc_text's UTF-8 bytes): 413.
    document_max_bytes: int = setting(
        "DATAPOINTS_DOCUMENT_MAX_BYTES", 50 * MIB, minimum=1, maximum=1024 * MIB
    )
    # Rows of a document processed, and committed, per transaction (the progress steps).
    document_chunk_rows: int = setting(
        "DATAPOINTS_DOCUMENT_CHUNK_ROWS", 10_000, minimum=1, maximum=1_000_000
    )
    # Seconds a document's processing may take on the worker before RQ stops it.
    document_job_timeout: int = setting(
        "DATAPOINTS_DOCUMENT_JOB_TIMEOUT", 1800, minimum=10, maximum=86_400
    )
