"""The MNIST download against a real HTTP server on 127.0.0.1 serving copies of the real files."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import pytest

from mnist import download, mirrors
from mnist.checksums import MNIST_FILES, TEST_LABELS, TRAIN_LABELS, sha256_file
from mnist.download import fetch_mnist
from mnist.errors import MirrorsExhausted

pytestmark = pytest.mark.integration

NAMES = [f.name for f in MNIST_FILES]


def assert_cache_is_mnist(raw_dir: Path) -> None:
    assert sorted(p.name for p in raw_dir.iterdir()) == sorted(NAMES), "only the four verified files, no leftovers"
    for file in MNIST_FILES:
        assert sha256_file(raw_dir / file.name) == file.sha256


def flip_pixel(raw: bytes) -> tuple[str, bytes]:
    """One flipped bit in the data (not the header), served gzipped: a checksum error."""
    data = bytearray(raw)
    data[len(data) // 2] ^= 0x01
    return f"{TRAIN_LABELS.name}.gz", gzip.compress(bytes(data))


def test_success_from_one_mirror(server, tmp_path):
    raw = tmp_path / "raw"
    origins = fetch_mnist([server.url("good")], raw)
    assert origins == {name: server.url("good") for name in NAMES}
    assert_cache_is_mnist(raw)
    assert server.count("/good/") == 4  # one request per file: the .gz is there


def test_raw_idx_files_are_accepted(server, mirror_root, mnist_dir, tmp_path):
    plain = mirror_root / "plain"
    plain.mkdir()
    for file in MNIST_FILES:
        (plain / file.name).write_bytes(gzip.decompress((mnist_dir / f"{file.name}.gz").read_bytes()))
    fetch_mnist([server.url("plain")], tmp_path / "raw")
    assert_cache_is_mnist(tmp_path / "raw")


def test_first_mirror_404_then_second(server, tmp_path):
    origins = fetch_mnist([server.url("missing"), server.url("good")], tmp_path / "raw")
    assert set(origins.values()) == {server.url("good")}
    assert server.count("/missing/") == 8  # name.gz then name, for each file
    assert_cache_is_mnist(tmp_path / "raw")


def test_corrupted_byte_is_a_checksum_error_and_falls_over(server, make_mirror, tmp_path, caplog):
    make_mirror("flipped", TRAIN_LABELS.name, flip_pixel)
    origins = fetch_mnist([server.url("flipped"), server.url("good")], tmp_path / "raw")
    assert origins[TRAIN_LABELS.name] == server.url("good")
    assert origins[TEST_LABELS.name] == server.url("flipped")
    assert server.counts()[f"/flipped/{TRAIN_LABELS.name}.gz"] == 1
    assert "SHA-256" in caplog.text and TRAIN_LABELS.name in caplog.text and server.url("flipped") in caplog.text
    assert_cache_is_mnist(tmp_path / "raw")


def test_truncated_gzip(server, make_mirror, tmp_path):
    make_mirror("truncated", TRAIN_LABELS.name, lambda raw: (f"{TRAIN_LABELS.name}.gz", gzip.compress(raw)[:-100]))
    with pytest.raises(MirrorsExhausted) as failed:
        fetch_mnist([server.url("truncated")], tmp_path / "raw")
    message = str(failed.value)
    assert "truncated" in message and TRAIN_LABELS.name in message and server.url("truncated") in message
    assert failed.value.missing == [TRAIN_LABELS.name]
    assert not failed.value.transient
    # the next mirror is tried, and only the missing file is fetched again
    fetch_mnist([server.url("truncated"), server.url("good")], tmp_path / "raw")
    assert server.count("/good/") == 1
    assert_cache_is_mnist(tmp_path / "raw")


def test_wrong_magic_number(server, make_mirror, tmp_path):
    make_mirror("magic", TEST_LABELS.name, lambda raw: (TEST_LABELS.name, raw[:2] + b"\x09" + raw[3:]))
    origins = fetch_mnist([server.url("magic"), server.url("good")], tmp_path / "raw")
    assert origins[TEST_LABELS.name] == server.url("good")
    with pytest.raises(MirrorsExhausted, match=r"t10k-labels-idx1-ubyte: wrong magic number 0x00000901"):
        fetch_mnist([server.url("magic")], tmp_path / "other")


def test_wrong_dimensions(server, make_mirror, mnist_dir, tmp_path):
    labels = gzip.decompress((mnist_dir / f"{TEST_LABELS.name}.gz").read_bytes())
    make_mirror("swapped", TRAIN_LABELS.name, lambda raw: (TRAIN_LABELS.name, labels))  # 10,000 labels, not 60,000
    with pytest.raises(MirrorsExhausted, match=r"train-labels-idx1-ubyte: shape \(10000,\) where MNIST has \(60000,\)"):
        fetch_mnist([server.url("swapped")], tmp_path / "raw")


def test_every_mirror_bad_gives_one_error_listing_each(server, make_mirror, closed_port, tmp_path):
    make_mirror("flipped", TRAIN_LABELS.name, flip_pixel)
    bad = [
        f"http://127.0.0.1:{closed_port}/mnist/",
        server.url("missing"),
        server.url("flipped"),
        str(tmp_path / "no-such-folder"),
    ]
    with pytest.raises(MirrorsExhausted) as failed:
        fetch_mnist(bad, tmp_path / "raw")
    message = str(failed.value)
    lines = message.splitlines()
    assert lines[0] == f"MNIST could not be downloaded: no mirror gave {TRAIN_LABELS.name}."
    assert f"1. http://127.0.0.1:{closed_port}/mnist/: unreachable" in message
    assert f"2. {server.url('missing')}:" in message and "HTTP 404" in message
    assert f"3. {server.url('flipped')}:" in message and "SHA-256" in message
    assert f"4. {tmp_path / 'no-such-folder'}: " in message and "is not a folder" in message
    assert "--mirror" in message and "REDES_MNIST_MIRRORS" in message
    assert not failed.value.transient  # nothing here is worth a retry


def test_unreachable_host_fails_in_seconds(closed_port, tmp_path):
    started = time.perf_counter()
    with pytest.raises(MirrorsExhausted, match="unreachable"):
        fetch_mnist([f"http://127.0.0.1:{closed_port}/"], tmp_path / "raw")
    assert time.perf_counter() - started < 3


def test_server_errors_and_timeouts_are_transient(server, monkeypatch, tmp_path):
    server.faults[f"/good/{TRAIN_LABELS.name}.gz"] = ["503"]
    with pytest.raises(MirrorsExhausted, match="HTTP 503") as failed:
        fetch_mnist([server.url("good")], tmp_path / "raw")
    assert failed.value.transient and failed.value.missing == [TRAIN_LABELS.name]

    monkeypatch.setattr(mirrors, "READ_TIMEOUT", 0.5)
    server.faults[f"/good/{TRAIN_LABELS.name}.gz"] = ["stall"]
    with pytest.raises(MirrorsExhausted, match="timed out") as failed:
        fetch_mnist([server.url("good")], tmp_path / "raw")
    assert failed.value.transient


def test_cache_reuse_makes_no_request(server, tmp_path):
    fetch_mnist([server.url("good")], tmp_path / "raw")
    before = len(server.requests)
    assert fetch_mnist([server.url("good")], tmp_path / "raw") == {name: "cache" for name in NAMES}
    assert len(server.requests) == before


def test_a_damaged_cached_file_is_fetched_again(server, tmp_path):
    raw = tmp_path / "raw"
    fetch_mnist([server.url("good")], raw)
    target = raw / TEST_LABELS.name
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    origins = fetch_mnist([server.url("good")], raw)
    assert origins[TEST_LABELS.name] == server.url("good")
    assert_cache_is_mnist(raw)


def test_dropped_connection_leaves_no_partial_file(server, tmp_path):
    raw = tmp_path / "raw"
    server.faults[f"/good/{TRAIN_LABELS.name}.gz"] = ["drop"]
    with pytest.raises(MirrorsExhausted, match="connection lost") as failed:
        fetch_mnist([server.url("good")], raw)
    assert failed.value.transient
    assert sorted(p.name for p in raw.iterdir()) == sorted(set(NAMES) - {TRAIN_LABELS.name})


def test_interrupted_download_leaves_no_partial_file(server, tmp_path):
    """Ctrl-C in the middle of a file: the exception passes through, the .part file is gone."""

    class Interrupt:
        def start(self, file, mirror):
            pass

        def advance(self, file, nbytes, total):
            if file == MNIST_FILES[0].name:
                raise KeyboardInterrupt

        def finish(self, file, ok):
            pass

    raw = tmp_path / "raw"
    with download.reporting(Interrupt()), pytest.raises(KeyboardInterrupt):
        fetch_mnist([server.url("good")], raw)
    assert list(raw.iterdir()) == []
    fetch_mnist([server.url("good")], raw)  # a later run starts clean
    assert_cache_is_mnist(raw)


def test_stray_part_file_is_never_trusted(server, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / f".{TRAIN_LABELS.name}.abc.part").write_bytes(b"half a file")
    fetch_mnist([server.url("good")], raw)
    assert server.count("/good/") == 4
    assert sha256_file(raw / TRAIN_LABELS.name) == TRAIN_LABELS.sha256


def test_folder_and_file_url_mirrors(mnist_dir, tmp_path):
    fetch_mnist([str(tmp_path / "nothing-here"), mnist_dir.as_uri()], tmp_path / "raw")
    assert_cache_is_mnist(tmp_path / "raw")
    fetch_mnist([str(mnist_dir)], tmp_path / "raw2")
    assert_cache_is_mnist(tmp_path / "raw2")
