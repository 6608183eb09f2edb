"""Binary outputs: 4 sigmoid outputs hold a digit's bits; an output code that is no digit counts as an error."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import TrainConfig
from core.errors import ConfigError, DataError
from core.network import Network
from core.training import train

DIGIT_CODES = [
    [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 1, 1], [0, 1, 0, 0],
    [0, 1, 0, 1], [0, 1, 1, 0], [0, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 1],
]  # fmt: skip


def binary_net(rng, sizes=(6, 5, 4), cost="cross-entropy", dtype="float64"):
    return Network(sizes, "sigmoid", cost, dtype=dtype, rng=rng, output_encoding="binary")


def test_targets_are_the_digits_bits_most_significant_first(rng):
    net = binary_net(rng)
    np.testing.assert_array_equal(net.targets(np.arange(10)), DIGIT_CODES)
    assert net.targets(np.array([6])).dtype == np.float64
    assert net.n_classes == 16
    onehot = Network((6, 5, 10), rng=rng)
    np.testing.assert_array_equal(onehot.targets(np.array([3])), np.eye(10)[[3]])
    assert onehot.n_classes == 10


def test_outputs_above_one_half_are_read_back_as_the_code(rng):
    net = binary_net(rng)
    a = np.array([
        [0.1, 0.6, 0.9, 0.2],   # 0110 = 6
        [0.9, 0.4, 0.3, 0.51],  # 1001 = 9
        [0.2, 0.2, 0.2, 0.2],   # 0000 = 0
        [0.7, 0.1, 0.8, 0.1],   # 1010 = 10: no digit
        [0.9, 0.9, 0.9, 0.9],   # 1111 = 15: no digit
        [0.1, 0.5, 0.1, 0.1],   # exactly 0.5 is a 0
    ])  # fmt: skip
    assert net.decode(a).tolist() == [6, 9, 0, 10, 15, 0]
    assert Network((6, 4), rng=rng).decode(a).tolist() == [2, 0, 0, 2, 0, 1]  # one-hot: the most active


def biased_to(net, code_bits):
    """Make ``net`` output ``code_bits`` for every input: zero weights, large biases of the right sign."""
    for w in net.weights:
        w[...] = 0
    net.biases[-1][...] = np.where(np.array(code_bits) > 0, 10.0, -10.0)
    return net


def test_an_invalid_code_is_counted_as_an_error(rng):
    X = rng.uniform(0, 1, (5, 6))
    net = biased_to(binary_net(rng), [1, 1, 0, 0])  # always 12, which no digit has
    assert net.predict(X).tolist() == [12] * 5
    _, acc = net.evaluate(X, np.array([0, 4, 8, 9, 3]))
    assert acc == 0.0
    biased_to(net, [0, 1, 0, 0])  # always 4
    _, acc = net.evaluate(X, np.array([4, 4, 8, 9, 4]))
    assert acc == pytest.approx(0.6)


def test_training_reports_an_invalid_code_as_a_wrong_example(rng):
    # η tiny: one epoch barely moves the weights, so every output still reads 12
    X = rng.uniform(0, 1, (20, 6))
    y = rng.integers(0, 10, 20)
    config = TrainConfig(sizes=(6, 5, 4), eta=1e-9, lmbda=0.0, batch_size=5, epochs=1, patience=None,
                         dtype="float64", output_encoding="binary")
    net = biased_to(Network.from_config(config), [1, 1, 0, 0])
    result = train(net, X, y, X, y, config)
    assert result.history[0].train_accuracy == 0.0 and result.history[0].val_accuracy == 0.0


@pytest.mark.parametrize("cost", ["cross-entropy", "quadratic"])
@pytest.mark.parametrize("lmbda", [0.0, 2.5])
def test_backprop_matches_central_differences_with_binary_targets(cost, lmbda, rng, numgrad, gradclose):
    net = binary_net(rng, cost=cost)
    X = rng.uniform(0, 1, (7, 6))
    y = rng.integers(0, 10, 7)
    nabla_b, nabla_w = net.backprop(X, y, lmbda=lmbda, n=20)
    loss = lambda: net.loss(X, y, lmbda=lmbda, n=20, training=True)  # noqa: E731
    # the loss really is against the bits: 4 outputs, targets from the code table
    assert net.cost.value(net.forward(X), net.targets(y)).shape == (7,)
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        gradclose(nabla_w[i], numgrad(loss, w))
        gradclose(nabla_b[i], numgrad(loss, b))


def test_a_binary_network_learns_a_small_problem(rng):
    # four clusters, one per class 0, 3, 5, 9: the outputs must learn each class's bits
    classes = np.array([0, 3, 5, 9])
    centers = rng.uniform(0, 1, (4, 6))
    pick = rng.integers(0, 4, 400)
    X = np.clip(centers[pick] + rng.normal(0, 0.03, (400, 6)), 0, 1)
    y = classes[pick]
    config = TrainConfig(sizes=(6, 8, 4), eta=2.0, lmbda=0.0, batch_size=10, epochs=40, patience=None,
                         seed=1, output_encoding="binary")
    result = train(Network.from_config(config), X[:300], y[:300], X[300:], y[300:], config)
    assert result.history[-1].val_accuracy == 1.0
    assert result.network.predict(X[300:]).tolist() == y[300:].tolist()


def test_save_and_load_keep_the_encoding(tmp_path, rng):
    net = binary_net(rng, sizes=(12, 5, 4), dtype="float32")
    net.save(tmp_path / "binary.npz")
    with np.load(tmp_path / "binary.npz", allow_pickle=False) as npz:
        assert str(npz["output_encoding"]) == "binary"
    loaded = Network.load(tmp_path / "binary.npz")
    assert loaded.output_encoding == "binary" and loaded.n_classes == 16
    X = rng.uniform(0, 1, (9, 12))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    # a one-hot file has no such key and loads as one-hot
    Network((12, 10), rng=rng).save(tmp_path / "onehot.npz")
    with np.load(tmp_path / "onehot.npz", allow_pickle=False) as npz:
        assert "output_encoding" not in npz.files
    assert Network.load(tmp_path / "onehot.npz").output_encoding == "onehot"
    assert "binary" in repr(loaded) and "output_encoding" not in repr(Network((12, 10), rng=rng))


def test_load_refuses_an_unknown_encoding(tmp_path, rng):
    from core.errors import ModelFileError

    binary_net(rng, dtype="float32").save(tmp_path / "n.npz")
    with np.load(tmp_path / "n.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["output_encoding"] = np.array("gray")
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelFileError, match="gray"):
        Network.load(tmp_path / "bad.npz")


def test_the_config_names_the_encoding_and_checks_it():
    assert TrainConfig().output_encoding == "onehot"
    TrainConfig(sizes=(784, 30, 4), output_encoding="binary").validate()
    with pytest.raises(ConfigError, match="output_encoding"):
        TrainConfig(output_encoding="gray").validate()
    with pytest.raises(ConfigError, match="sigmoid"):
        TrainConfig(sizes=(784, 30, 4), cost="log-likelihood", output_encoding="binary").validate()
    with pytest.raises(ConfigError, match="sigmoid"):
        Network((6, 4), output_activation="softmax", output_encoding="binary")
    with pytest.raises(ConfigError, match="at most"):
        Network((6, 17), output_encoding="binary")


def test_from_config_builds_the_encoding_and_train_checks_it_matches(rng):
    config = TrainConfig(sizes=(6, 5, 4), epochs=1, batch_size=5, output_encoding="binary")
    assert Network.from_config(config).output_encoding == "binary"
    X, y = rng.uniform(0, 1, (10, 6)), rng.integers(0, 10, 10)
    with pytest.raises(ConfigError, match="output_encoding"):
        train(Network((6, 5, 4), rng=rng), X, y, X, y, config)


def test_binary_labels_must_fit_in_the_code(rng):
    net = binary_net(rng, sizes=(6, 3))  # 3 bits: classes 0..7
    with pytest.raises(DataError, match="0..7"):
        net.evaluate(rng.uniform(0, 1, (2, 6)), np.array([1, 9]))
