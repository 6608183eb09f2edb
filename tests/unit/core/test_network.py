"""Network: backprop against central differences for every parameter (L2 on, dropout on), files, inference."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

from core.config import TrainConfig
from core.errors import ConfigError, DataError, ModelFileError
from core.network import Network

ARCHITECTURES = [
    # sizes, hidden activation(s), cost
    ((6, 5, 3), "sigmoid", "cross-entropy"),
    ((6, 5, 3), "sigmoid", "quadratic"),
    ((6, 5, 4, 3), "relu,tanh", "log-likelihood"),
    ((6, 4, 4, 3), "gaussian,linear", "quadratic"),
    ((6, 3), "sigmoid", "cross-entropy"),  # no hidden layer
]


def small_problem(sizes, rng, m=7):
    X = rng.uniform(0, 1, size=(m, sizes[0]))
    y = rng.integers(0, sizes[-1], m)
    return X, y


def check_every_parameter(net, X, y, lmbda, n, numgrad, gradclose):
    nabla_b, nabla_w = net.backprop(X, y, lmbda=lmbda, n=n)
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        loss = lambda: net.loss(X, y, lmbda=lmbda, n=n, training=True)  # noqa: E731
        gradclose(nabla_w[i], numgrad(loss, w))
        gradclose(nabla_b[i], numgrad(loss, b))


@pytest.mark.parametrize("sizes, activation, cost", ARCHITECTURES)
@pytest.mark.parametrize("lmbda", [0.0, 2.5])
def test_backprop_matches_central_differences_for_every_parameter(sizes, activation, cost, lmbda, rng, numgrad, gradclose):
    net = Network(sizes, activation, cost, dtype="float64", rng=rng)
    X, y = small_problem(sizes, rng)
    check_every_parameter(net, X, y, lmbda, 20, numgrad, gradclose)


@pytest.mark.parametrize("sizes, activation, cost", ARCHITECTURES[:3])
def test_backprop_with_dropout_matches_central_differences_with_masks_fixed(
    sizes, activation, cost, rng, numgrad, gradclose
):
    net = Network(sizes, activation, cost, dtype="float64", rng=rng, dropout=0.4)
    X, y = small_problem(sizes, rng)
    net.forward(X, training=True)  # draw the masks
    for drop in net.dropouts:
        drop.frozen = True
    check_every_parameter(net, X, y, 1.5, 20, numgrad, gradclose)
    # the masks really act: some hidden unit got no gradient from dropped examples
    if net.dropouts:
        assert (net.dropouts[0].mask == 0).any()


def test_large_init_and_saturated_quadratic_still_exact(rng, numgrad, gradclose):
    net = Network((6, 5, 3), "sigmoid", "quadratic", init="large", dtype="float64", rng=rng)
    X, y = small_problem((6, 5, 3), rng)
    check_every_parameter(net, X, y, 0.0, 7, numgrad, gradclose)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_throughout(dtype, rng):
    net = Network((6, 5, 3), "relu", "log-likelihood", dtype=dtype, rng=rng)
    X, y = small_problem((6, 5, 3), rng)
    assert all(w.dtype == dtype for w in net.weights + net.biases)
    assert net.forward(X.astype(dtype), training=True).dtype == dtype
    assert net.predict_proba(X).dtype == dtype
    nabla_b, nabla_w = net.backprop(X, y)
    assert all(g.dtype == dtype for g in nabla_b + nabla_w)


def test_output_layer_follows_the_cost():
    assert Network((4, 3, 2), "relu", "log-likelihood").activations == ("relu", "softmax")
    assert Network((4, 3, 2), "relu", "cross-entropy").activations == ("relu", "sigmoid")
    assert Network((4, 3, 3, 2), "relu,tanh", "quadratic").activations == ("relu", "tanh", "sigmoid")


def test_from_config_is_seeded():
    config = TrainConfig(sizes=(8, 5, 3), seed=3)
    a, b = Network.from_config(config), Network.from_config(config)
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(wa, wb)
    c = Network.from_config(TrainConfig(sizes=(8, 5, 3), seed=4))
    assert not np.array_equal(a.weights[0], c.weights[0])


def test_weights_are_batch_first_and_live():
    net = Network((784, 30, 10), rng=np.random.default_rng(0))
    assert [w.shape for w in net.weights] == [(784, 30), (30, 10)]
    assert [b.shape for b in net.biases] == [(30,), (10,)]
    net.weights[0][0, 0] = 42.0
    assert net.weights[0][0, 0] == 42.0


def test_constructor_rejects_bad_architecture():
    with pytest.raises(ConfigError, match="sizes"):
        Network((784, 0, 10))
    with pytest.raises(ConfigError, match="activation"):
        Network((784, 30, 10), activation="swish")
    with pytest.raises(ConfigError, match="2 hidden layers"):
        Network((784, 30, 20, 10), activation="relu,tanh,sigmoid")
    with pytest.raises(ConfigError, match="dtype"):
        Network((784, 10), dtype="float16")


# --- inference ----------------------------------------------------------------------


@pytest.fixture
def net():
    return Network((784, 20, 10), rng=np.random.default_rng(0))


def test_predict_accepts_flat_images_uint8_and_floats_alike(net, rng):
    pixels = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    as_float = pixels.reshape(5, 784).astype(np.float32) / 255
    expected = net.predict_proba(as_float)
    np.testing.assert_array_equal(net.predict_proba(pixels), expected)
    np.testing.assert_array_equal(net.predict_proba(pixels.reshape(5, 784)), expected)
    np.testing.assert_array_equal(net.predict_proba(pixels.astype(np.int64)), expected)  # e.g. from pandas
    labels = net.predict(pixels)
    assert labels.dtype == np.int64 and labels.shape == (5,)
    np.testing.assert_array_equal(labels, expected.argmax(axis=1))


def test_predict_in_chunks_equals_one_pass(net, rng):
    X = rng.uniform(0, 1, size=(5000, 784)).astype(np.float32)
    np.testing.assert_allclose(net.predict_proba(X), net.forward(X), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros(784, np.float32), "batch"),
        (np.zeros((2, 783), np.float32), "783"),
        (np.full((2, 784), 255.0, np.float32), r"\[0, 1\]"),
        (np.full((2, 784), np.nan, np.float32), r"\[0, 1\]"),
        (np.full((2, 784), 300, np.int64), "0..255"),
        (np.zeros((2, 784), bool), "dtype"),
    ],
)
def test_predict_refuses_bad_inputs_clearly(net, X, match):
    with pytest.raises(DataError, match=match):
        net.predict(X)


def test_evaluate_returns_mean_cost_and_accuracy(net, rng):
    X = rng.uniform(0, 1, size=(4500, 784)).astype(np.float32)
    y = rng.integers(0, 10, 4500)
    cost, accuracy = net.evaluate(X, y)
    a = net.forward(X).astype(np.float64)
    expected_cost = np.mean(net.cost.value(a, np.eye(10)[y]))
    assert cost == pytest.approx(expected_cost, rel=1e-5)
    assert accuracy == pytest.approx(np.mean(a.argmax(axis=1) == y))
    with_l2, _ = net.evaluate(X, y, lmbda=5.0, n=50000)
    l2 = 5.0 / (2 * 50000) * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in net.weights)
    assert with_l2 == pytest.approx(expected_cost + l2, rel=1e-5)


def test_evaluate_refuses_bad_labels(net):
    X = np.zeros((3, 784), np.float32)
    with pytest.raises(DataError, match="0..9"):
        net.evaluate(X, np.array([0, 1, 10]))
    with pytest.raises(DataError, match="shape"):
        net.evaluate(X, np.array([0, 1]))


# --- files --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_load_round_trip(dtype, tmp_path, rng):
    net = Network((12, 7, 5, 4), "relu,tanh", "log-likelihood", dtype=dtype, rng=rng)
    path = tmp_path / "model.bin"  # the exact path is kept, no ".npz" appended
    net.save(path)
    assert path.exists() and list(tmp_path.iterdir()) == [path]
    loaded = Network.load(path)
    assert loaded.sizes == net.sizes and loaded.activations == net.activations
    assert loaded.cost.name == net.cost.name and loaded.dtype == net.dtype
    for a, b in zip(net.weights + net.biases, loaded.weights + loaded.biases):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    X = rng.uniform(0, 1, (9, 12))
    np.testing.assert_array_equal(net.predict_proba(X), loaded.predict_proba(X))


def test_saved_file_needs_no_pickle(tmp_path, net):
    net.save(tmp_path / "n.npz")
    with np.load(tmp_path / "n.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            ["format", "sizes", "activations", "cost", "dtype", "weights_0", "weights_1", "biases_0", "biases_1"]
        )
        assert all(npz[key].dtype != object for key in npz.files)


def rewrite(tmp_path, net, **changes):
    """Save ``net`` then rewrite its file with some keys replaced (None removes a key)."""
    net.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"weights_0": np.zeros((20, 784), np.float32)}, "shape"),
        ({"weights_0": np.zeros((784, 20), np.float64)}, "dtype"),
        ({"weights_1": np.full((20, 10), np.nan, np.float32)}, "NaN"),
        ({"extra": np.zeros(3)}, "extra"),
        ({"biases_1": None}, "missing"),
        ({"weights_0": np.array([None, {"a": 1}], dtype=object)}, "dtype"),
        ({"cost": np.array(["quadratic"], dtype=object)}, "dtype"),
        ({"activations": np.array(["sigmoid", "swish"])}, "swish"),
        ({"cost": np.array("hinge")}, "hinge"),
        ({"dtype": np.array("float16")}, "float16"),
        ({"sizes": np.array([784, 20], np.int64)}, "keys"),
        ({"format": np.array("keras")}, "format"),
    ],
)
def test_load_refuses_damaged_files(changes, match, tmp_path, net):
    with pytest.raises(ModelFileError, match=match):
        Network.load(rewrite(tmp_path, net, **changes))


def test_load_refuses_pickles_npy_and_garbage(tmp_path):
    pickled = tmp_path / "p.npz"
    pickled.write_bytes(pickle.dumps({"weights_0": np.zeros(3)}))
    single = tmp_path / "s.npy"
    np.save(single, np.zeros(3))
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"not a zip at all")
    truncated = tmp_path / "t.npz"
    Network((4, 2)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    for path in (pickled, single, garbage, truncated):
        with pytest.raises(ModelFileError):
            Network.load(path)
    with pytest.raises(FileNotFoundError):
        Network.load(tmp_path / "missing.npz")


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, net):
    path = tmp_path / "n.npz"
    net.save(path)
    net.save(path)  # overwrite
    assert [p.name for p in tmp_path.iterdir()] == ["n.npz"]
    assert zipfile.is_zipfile(path)


def test_reading_the_weights_changes_nothing():
    """A pending lazy decay (only ever inside an SGD epoch) is left alone by a read: weights is a plain property."""
    net = Network((4, 3, 2), "sigmoid", rng=np.random.default_rng(0))
    net.dense[0].w_scale = 0.5
    before = net.dense[0].W.copy()
    first = net.weights[0]
    assert first is net.dense[0].W and np.array_equal(net.weights[0], before)
    assert net.dense[0].w_scale == 0.5
