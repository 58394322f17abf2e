"""datapoints_service's settings (servicekit.settings loads and checks them at start).

The suite-wide ones (`SERVICE_SECRET`, `AUTH_SERVICE_URL`, ...) are servicekit's Flask
config, not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.settings import setting


@dataclass(frozen=True)
class DatapointsSettings:
    # Rows fetched from the database per round while a CSV answer streams.
    csv_batch_rows: int = setting("DATAPOINTS_CSV_BATCH_ROWS", 1000, minimum=1, maximum=100_000)
