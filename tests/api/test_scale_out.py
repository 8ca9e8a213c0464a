"""Scale-out: two `tierserve serve` processes on one PostgreSQL database and one S3 bucket (moto on loopback),
each with a data directory of its own. An image that `tierserve ingest` commits is served by both at once,
byte for byte alike and with the same ETag; stopping one does not disturb the other, which goes on serving
what is ingested after.

Runs when TIERSERVE_TEST_DATABASE_URL names a PostgreSQL server (CI's second pass). The test creates a
database of its own there: the shared test database holds the session's collection.
"""

from __future__ import annotations

import os
import signal
import threading
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import httpx2
import numpy as np
import pytest
import pyvips
import yaml
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from tests.conftest import Collection
from tests.images import decode_jpeg, slide_pattern
from tests.s3 import CREDENTIALS, MotoServer
from tests.storage.conftest import FOREIGN_AWS_VARIABLES
from tests.test_cli import Served, run, serving
from tierserve.db.models import ImageLayer, SubImage
from tierserve.settings import Settings

TEST_DATABASE_URL = os.environ.get("TIERSERVE_TEST_DATABASE_URL", "")

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="needs PostgreSQL: set TIERSERVE_TEST_DATABASE_URL=postgresql+psycopg://... (.ci/postgres.sh prints one)",
)

PREFIX = "scale-out"
DATA_SET = 5001
FIRST, SECOND = 5101, 5102  # ingested before and after one server stops
SIZE = (400, 600)  # height and width of both sources
S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"  # namespace of S3's XML answers


@dataclass(frozen=True)
class Shared:
    """What the hosts share: a PostgreSQL database and a bucket on a moto server; and the ingest's sources."""

    database_url: str
    moto: MotoServer
    bucket: str
    sources: Path
    root: Path  # the hosts' data directories are root/<host>

    @property
    def store_url(self) -> str:
        return f"s3://{self.bucket}/{PREFIX}"

    def host(self, collection: Collection, name: str) -> Collection:
        """`collection` with the settings of host `name`, which are all `serving` reads of it: the shared
        database and bucket, and a data directory of its own."""
        settings = Settings(data_dir=self.root / name, database_url=self.database_url, store_url=self.store_url)
        return replace(collection, settings=settings)

    def ingest(self, manifest: Path) -> str:
        """`tierserve ingest MANIFEST` as a process (data directory root/ingest); returns its stderr."""
        env = {**os.environ, "TIERSERVE_DATA_DIR": str(self.root / "ingest")}
        env["TIERSERVE_DATABASE_URL"] = self.database_url
        result = run("ingest", str(manifest), env=env)
        assert result.returncode == 0, result.stderr
        return result.stderr

    def objects(self) -> dict[str, tuple[int, str]]:
        """Every object in the bucket (an unsigned ListObjectsV2 straight to moto): key -> (size, ETag)."""
        with urllib.request.urlopen(f"{self.moto.url}/{self.bucket}?list-type=2", timeout=10) as response:
            listing = ET.fromstring(response.read())
        assert listing.findtext(f"{S3}IsTruncated") == "false"
        return {
            item.findtext(f"{S3}Key", ""): (int(item.findtext(f"{S3}Size", "-1")), item.findtext(f"{S3}ETag", ""))
            for item in listing.iter(f"{S3}Contents")
        }


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A new, empty database on the server of TIERSERVE_TEST_DATABASE_URL; dropped afterwards."""
    server = make_url(TEST_DATABASE_URL)
    name = f"tierserve_scale_out_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def shared(postgres_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shared]:
    """The database, a new bucket, two source images, and the environment every process of the test
    inherits: the store URL, the bucket's endpoint and dummy credentials (no other AWS variable)."""
    sources = tmp_path / "sources"
    sources.mkdir()
    for image_id in (FIRST, SECOND):
        pattern = np.ascontiguousarray(slide_pattern(*SIZE, seed=image_id).astype("uint8"))
        pyvips.Image.new_from_array(pattern).pngsave(str(sources / f"{image_id}.png"))
    with MotoServer() as moto:
        bucket = f"tierserve-{uuid.uuid4().hex[:12]}"
        moto.create_bucket(bucket)
        for variable in FOREIGN_AWS_VARIABLES:
            monkeypatch.delenv(variable, raising=False)
        for variable, value in CREDENTIALS.items():
            monkeypatch.setenv(variable, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
        shared = Shared(postgres_database, moto, bucket, sources, tmp_path)
        monkeypatch.setenv("TIERSERVE_STORE_URL", shared.store_url)
        yield shared


def write_manifest(shared: Shared, name: str, image_ids: list[int]) -> Path:
    """A manifest of one data set holding `image_ids` (sources `<id>.png`)."""
    images = [
        {"id": image_id, "section_number": image_id - FIRST + 1, "source": f"{image_id}.png"} for image_id in image_ids
    ]
    manifest = shared.sources / name
    manifest.write_text(
        yaml.safe_dump({"section_data_sets": [{"id": DATA_SET, "name": "Scale-out", "images": images}]})
    )
    return manifest


def urls(image_id: int) -> tuple[str, str, str]:
    """A region of `image_id`, the whole image, and its record from the data API."""
    return (
        f"/api/v2/section_image_download/{image_id}?left=100&top=50&width=300&height=200&quality=80",
        f"/api/v2/section_image_download/{image_id}",
        f"/api/v2/data/query.json?q=model::SectionImage,rma::criteria,[id$eq{image_id}]",
    )


def base(served: Served) -> str:
    return f"http://127.0.0.1:{served.port}"


def download(served: Served, url: str) -> httpx2.Response:
    response = httpx2.get(base(served) + url, timeout=30)
    assert response.status_code == 200, (base(served), url, response.text)
    return response


def not_yet_served(servers: list[Served], image_id: int) -> None:
    region, _, query = urls(image_id)
    for served in servers:
        assert httpx2.get(base(served) + region, timeout=30).status_code == 404
        assert download(served, query).json()["total_rows"] == 0


def served_alike(servers: list[Served], image_id: int) -> dict[str, bytes]:
    """Every url of `image_id` answers 200 with the same bytes and ETag on every server; returns url -> bytes."""
    bodies = {}
    for url in urls(image_id):
        responses = [download(served, url) for served in servers]
        assert len({response.content for response in responses}) == 1, url
        assert len({response.headers.get("etag") for response in responses}) == 1, url
        bodies[url] = responses[0].content
    region, whole, query = urls(image_id)
    assert decode_jpeg(bodies[region]).shape == (200, 300, 3)
    assert decode_jpeg(bodies[whole]).shape == (*SIZE, 3)
    found = httpx2.Response(200, content=bodies[query]).json()
    assert found["success"] and found["total_rows"] == 1, found
    assert (found["msg"][0]["id"], found["msg"][0]["data_set_id"]) == (image_id, DATA_SET)
    # a cached copy revalidates on any host (a load balancer may switch hosts between requests)
    etag = download(servers[0], whole).headers["etag"]
    for served in servers:
        assert httpx2.get(base(served) + whole, headers={"If-None-Match": etag}, timeout=30).status_code == 304
    return bodies


def assert_in_postgres_and_the_bucket(shared: Shared, image_ids: list[int]) -> None:
    """The rows are in the PostgreSQL database, and every layer they record is an object in the bucket
    of the recorded size and version (ETag)."""
    engine = create_engine(shared.database_url)
    try:
        assert engine.dialect.name == "postgresql"
        with engine.connect() as connection:
            statement = select(SubImage.id, ImageLayer.path, ImageLayer.byte_size, ImageLayer.version).join(ImageLayer)
            rows = connection.execute(statement).all()
    finally:
        engine.dispose()
    assert sorted(row.id for row in rows) == image_ids
    objects = shared.objects()
    for row in rows:
        assert objects[f"{PREFIX}/{row.path}"] == (row.byte_size, row.version), row


def assert_nothing_local(directory: Path) -> None:
    """A data directory with no store, no pyramid and no SQLite database in it."""
    assert directory.is_dir() and not (directory / "store").exists()
    assert not [path for path in directory.rglob("*") if path.suffix in {".tif", ".db"}]


def keep_asking(served: Served, bodies: dict[str, bytes], stop: threading.Event, answers: list[int]) -> None:
    """Ask `served` for `bodies`' urls in turn until `stop`; record each status (599: other bytes, 0: no answer)."""
    with httpx2.Client(base_url=base(served), timeout=30) as client:
        while not stop.is_set():
            for url, body in bodies.items():
                try:
                    response = client.get(url)
                except httpx2.TransportError:
                    answers.append(0)
                else:
                    answers.append(response.status_code if response.content == body else 599)


def test_two_servers_serve_each_ingest_at_once_and_one_stopping_does_not_disturb_the_other(
    shared: Shared, collection: Collection
) -> None:
    with serving(shared.host(collection, "host-a")) as a, serving(shared.host(collection, "host-b")) as b:
        not_yet_served([a, b], FIRST)
        assert "ingested 1, already present 0, failed 0" in shared.ingest(write_manifest(shared, "one.yaml", [FIRST]))
        first = served_alike([a, b], FIRST)
        assert_in_postgres_and_the_bucket(shared, [FIRST])

        # host b is asked without pause while host a stops
        stop = threading.Event()
        answers: list[int] = []
        asker = threading.Thread(target=keep_asking, args=(b, first, stop, answers))
        asker.start()
        try:
            a.process.terminate()
            assert a.process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it stopped on
            with pytest.raises(httpx2.TransportError):
                httpx2.get(base(a) + "/healthz", timeout=5)
            for url, body in first.items():
                assert download(b, url).content == body
        finally:
            stop.set()
            asker.join(timeout=60)
        assert answers and set(answers) == {200}, answers

        manifest = write_manifest(shared, "two.yaml", [FIRST, SECOND])
        assert "ingested 1, already present 1, failed 0" in shared.ingest(manifest)
        second = served_alike([b], SECOND)
        assert not set(first.values()) & set(second.values())
        for url, body in first.items():
            assert download(b, url).content == body
        assert_in_postgres_and_the_bucket(shared, [FIRST, SECOND])
    for served, host in [(a, "host-a"), (b, "host-b")]:
        assert f"data directory: {shared.root / host}\n" in served.stderr
        assert "no images ingested yet" in served.stderr  # both were up before the first ingest
        assert_nothing_local(shared.root / host)
    assert "Application shutdown complete." in a.stderr
    assert_nothing_local(shared.root / "ingest")


def test_processes_starting_together_on_a_new_database_migrate_one_after_the_other(
    postgres_database: str, tmp_path: Path
) -> None:
    """Several replicas (or a serve and an ingest) started at once on an empty database all come up."""
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda n: run(
                    "migrate",
                    env={
                        **os.environ,
                        "TIERSERVE_DATA_DIR": str(tmp_path / f"host-{n}"),
                        "TIERSERVE_DATABASE_URL": postgres_database,
                    },
                ),
                range(4),
            )
        )
    assert [result.returncode for result in results] == [0, 0, 0, 0], [result.stderr for result in results]
    engine = create_engine(postgres_database)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    engine.dispose()
