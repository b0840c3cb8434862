"""Two writers adding series to one study at once keep every summary (PostgreSQL row locks)."""

from __future__ import annotations

import threading

from tests.store.synthetic import make_dataset, new_uid, open_ingestor, to_bytes
from tui_pacs.config import Config
from tui_pacs.services.ingest import Ingestor
from tui_pacs.store.models import Study


def test_concurrent_new_series_keep_modalities_in_study(config: Config) -> None:
    """Series of different modalities stored at once by two writers all reach ModalitiesInStudy."""
    with open_ingestor(config) as first, open_ingestor(config) as second:
        for _round in range(8):
            study_uid = new_uid()
            first.store_bytes(
                to_bytes(make_dataset(study_uid=study_uid, series_uid=new_uid(), modality="CT"))
            )
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def add(
                ingestor: Ingestor,
                modality: str,
                uid: str = study_uid,
                barrier: threading.Barrier = barrier,
                errors: list[BaseException] = errors,
            ) -> None:
                dataset = make_dataset(study_uid=uid, series_uid=new_uid(), modality=modality)
                blob = to_bytes(dataset)
                barrier.wait()
                try:
                    ingestor.store_bytes(blob)
                except BaseException as exc:  # reported below
                    errors.append(exc)

            threads = [
                threading.Thread(target=add, args=(first, "MR")),
                threading.Thread(target=add, args=(second, "PT")),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert errors == []
            study = Study.get(Study.study_instance_uid == study_uid)
            assert study.modalities_in_study == "CT\\MR\\PT"
            assert study.number_of_study_related_series == 3
            assert study.number_of_study_related_instances == 3
