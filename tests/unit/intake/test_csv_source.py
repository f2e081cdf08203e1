"""`lead-router import --source NAME`: each CSV row is that CRM's record, mapped like a webhook payload."""

from __future__ import annotations

from pathlib import Path

import redis

from config.sources_models import SourceConfig
from router.intake.csv_import import import_csv
from router.intake.sources.intake import Source
from router.intake.sources.mapping import SourceMapping
from workers.store.keys import Keys
from workers.store.records import LeadStore


def test_rows_are_mapped_by_the_source(tmp_path: Path, redis_client: redis.Redis, key_prefix: str) -> None:
    config = SourceConfig.model_validate({"name": "lsq", "preset": "leadsquared", "auth": "none",
                                          "country_code": "+91"})
    sheet = tmp_path / "export.csv"
    sheet.write_text(
        "ProspectID,FirstName,LastName,Mobile,Phone,mx_Product\n"
        "p-1,Asha,Menon,,+91-9876543210,Life\n"
        "p-2,Ravi,,98450 98450,,Motor\n"
        "p-3,Nobody,,,,Life\n"
    )
    store = LeadStore(redis_client, keys=Keys(key_prefix))
    queued: list[str] = []
    source = Source(config=config, mapping=SourceMapping(config))
    report = import_csv(sheet, store=store, enqueue=queued.append, source="lsq", mapping=source)
    assert (report.taken, report.duplicates) == (2, 0)
    assert report.errors == ["line 4: no phone number: tried 'Mobile', 'Phone'"]
    assert queued == ["lsq:p-1", "lsq:p-2"]
    record = store.get("lsq:p-1")
    assert record is not None and record.number == "+919876543210" and record.fields["mx_Product"] == "Life"
    again = import_csv(sheet, store=store, enqueue=queued.append, source="lsq", mapping=source)
    assert (again.taken, again.duplicates) == (0, 2)
