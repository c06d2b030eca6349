"""DAG ``erase_source``: delete what every open erasure manifest lists, and prove each deletion.

A steward erases a source with ``lineage erase SOURCE --reason ...``; the server revokes its
contracts and writes a manifest of everything built from it (datasets, models, model cards),
each with its artifact location.  This DAG does the deleting, for every manifest with items
still outstanding:

1. ``outstanding`` asks the server (``GET /api/v1/erasures``, with the worker's API token, never
   database credentials) for every outstanding item;
2. ``erase_item`` (one mapped task per item) deletes the item's files from the example
   pipeline's storage (a ``file://`` location: the dataset's directory, model artifacts and
   model cards included), emits an OpenLineage event whose output carries the
   ``lifecycleStateChange`` facet ``DROP`` through the same transport the other DAGs use (the
   OpenLineage provider's), and records the deletion against the manifest
   (``POST /api/v1/erasures/{id}/items/{item}/deletions``).

Storage here is the example pipeline's: files under its data root (``LINEAGE_EXAMPLE_DATA``).  A location outside it,
or of another scheme (a warehouse table), is left outstanding and fails the task, so
``lineage erasure status ID`` keeps showing it until someone deletes it and records that.  A
location already gone counts as deleted (a model's directory holds its card, so deleting the
model takes the card with it).  The server URL is ``LINEAGE_URL``; the token ``LINEAGE_TOKEN``,
else the API key of the OpenLineage transport (the worker's ``emitter`` token).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from airflow.sdk import DAG, task

if str(Path(__file__).resolve().parent) not in sys.path:  # the example's own package lives beside its DAGs
    sys.path.append(str(Path(__file__).resolve().parent))

DAG_ID = "erase_source"


def _server() -> tuple[str, dict[str, str]]:
    url = os.environ.get("LINEAGE_URL", "http://127.0.0.1:5000").rstrip("/")
    token = os.environ.get("LINEAGE_TOKEN")
    if not token:
        transport = json.loads(os.environ.get("AIRFLOW__OPENLINEAGE__TRANSPORT") or "{}")
        token = transport.get("api_key") or (transport.get("auth") or {}).get("apiKey")
    if not token:
        raise RuntimeError("no API token: set LINEAGE_TOKEN (or the OpenLineage transport's api_key) for the erase_source DAG")
    return url, {"Authorization": f"Bearer {token}"}


def _storage_root() -> Path:
    from example_pipeline.pipeline import data_root

    return data_root().resolve()


def local_path(location: str | None, root: Path) -> Path | None:
    """The file or directory a ``file://`` location names, if it lies under ``root``; else None."""
    if not location:
        return None
    parsed = urlparse(location)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    path = Path(unquote(parsed.path)).resolve()
    return path if path != root and path.is_relative_to(root) else None


def _drop_event(item: dict[str, Any]) -> Any:
    from openlineage.client.event_v2 import Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import lifecycle_state_change_dataset as lsc

    from airflow.providers.openlineage import conf

    facet = lsc.LifecycleStateChangeDatasetFacet(lifecycleStateChange=lsc.LifecycleStateChange.DROP)
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=datetime.now(timezone.utc).isoformat(),
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace=conf.namespace(), name=f"{DAG_ID}.erase_item"),
        outputs=[OutputDataset(namespace=item["namespace"], name=item["name"], facets={"lifecycleStateChange": facet})],
        producer="https://github.com/lineage-ml/lineage/dags/erase_source",
    )


def _emit(event: Any) -> None:
    """Through the provider's adapter and transport; emission never fails the task."""
    try:
        from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

        get_openlineage_listener().adapter.emit(event)
    except Exception as exc:  # noqa: BLE001 - lineage must not break the deletion
        print(f"could not emit the DROP event: {type(exc).__name__}: {exc}")


with DAG(
    dag_id=DAG_ID,
    description="Delete what open erasure manifests list, emit DROP for each, record each deletion",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["lineage", "erasure"],
    default_args={"owner": "ml-platform", "retries": 0},
    doc_md=__doc__,
) as dag:

    @task
    def outstanding() -> list[dict[str, Any]]:
        import httpx

        url, headers = _server()
        todo = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            listed = http.get("/api/v1/erasures", params={"limit": 1000})
            listed.raise_for_status()
            for e in listed.json()["erasures"]:
                if e["counts"]["outstanding"] == 0:
                    continue
                detail = http.get(f"/api/v1/erasures/{e['id']}")
                detail.raise_for_status()
                todo += [{"erasure": e["id"], **{k: i[k] for k in ("id", "kind", "dataset", "namespace", "name", "location")}}
                         for i in detail.json()["items"] if i["state"] == "outstanding"]
        print(f"{len(todo)} outstanding item(s)")
        return todo

    @task
    def erase_item(item: dict[str, Any]) -> dict[str, Any]:
        import httpx

        path = local_path(item["location"], _storage_root())
        if path is None:
            raise RuntimeError(
                f"{item['dataset']} (erasure #{item['erasure']}, item {item['id']}) is at {item['location'] or 'no known location'}, "
                "outside this pipeline's storage: delete it by hand and record that against the manifest"
            )
        existed = path.exists()
        if path.is_dir():
            shutil.rmtree(path)
        elif existed:
            path.unlink()
        _emit(_drop_event(item))
        url, headers = _server()
        note = "deleted" if existed else "already gone (deleted with an enclosing location)"
        r = httpx.post(f"{url}/api/v1/erasures/{item['erasure']}/items/{item['id']}/deletions",
                       json={"location": item["location"], "note": note}, headers=headers, timeout=30)
        r.raise_for_status()
        print(f"{item['dataset']}: {note} ({path})")
        return {"item": item["id"], "existed": existed}

    erase_item.expand(item=outstanding())
