"""Property tests: whatever bytes or arrays come in, only the project's documented exceptions come out."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core.errors import RedesCoreError
from core.network import Network
from mnist.idx import IdxError, decompress_if_gzipped, encode_idx, parse_idx

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(data=st.binary(max_size=2_000), ndim=st.one_of(st.none(), st.integers(0, 4)))
def test_random_bytes_to_the_idx_parser_raise_only_idx_error(data, ndim):
    try:
        array = parse_idx(data, "random", expect_ndim=ndim)
    except IdxError:
        return
    assert array.dtype == np.uint8 and array.nbytes == len(data) - 4 - 4 * array.ndim


@FAST
@given(data=st.binary(max_size=500))
def test_random_bytes_behind_a_gzip_magic_raise_only_idx_error(data):
    try:
        parse_idx(decompress_if_gzipped(b"\x1f\x8b" + data, "random.gz"), "random.gz")
    except IdxError:
        pass


@FAST
@given(array=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6)), cut=st.integers(1, 20))
def test_a_valid_idx_file_round_trips_and_any_truncation_is_an_idx_error(array, cut):
    encoded = encode_idx(array)
    np.testing.assert_array_equal(parse_idx(encoded), array)
    with pytest.raises(IdxError):
        parse_idx(encoded[: max(0, len(encoded) - cut)])
    with pytest.raises(IdxError):
        parse_idx(encoded + b"\0" * cut)
    with pytest.raises(IdxError):
        decompress_if_gzipped(gzip.compress(encoded)[:-cut], "cut.gz")


NET = Network([6, 5, 3], activation="sigmoid", rng=np.random.default_rng(0), dropout=0.2)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8)
dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_, np.complex64])
floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


def any_array(draw_dtype=dtypes):
    return draw_dtype.flatmap(
        lambda dt: hnp.arrays(dt, shapes, elements=floats if np.dtype(dt).kind == "f" else None)
    )


@FAST
@given(X=any_array(), training=st.booleans())
def test_forward_on_any_array_raises_only_core_errors(X, training):
    try:
        out = NET.forward(X, training)
    except RedesCoreError:
        return
    assert out.shape == (X.shape[0], 3)


@FAST
@given(X=any_array(), delta=any_array())
def test_backward_on_any_delta_raises_only_core_errors(X, delta):
    try:
        NET.forward(X, training=True)
        NET.backward(delta)
    except RedesCoreError:
        return
    assert delta.shape == (X.shape[0], 3)


@FAST
@given(X=any_array(), y=any_array(st.sampled_from([np.int64, np.float64, np.uint8])), lmbda=st.floats(0, 10))
def test_evaluate_and_predict_on_any_arrays_raise_only_core_errors(X, y, lmbda):
    try:
        NET.evaluate(X, y, lmbda=lmbda)
    except RedesCoreError:
        pass
    try:
        NET.predict(X)
    except RedesCoreError:
        pass


@FAST
@given(
    sizes=st.lists(st.integers(-2, 6), min_size=0, max_size=4),
    activation=st.sampled_from(["sigmoid", "relu", "tanh", "swish", ""]),
    cost=st.sampled_from(["cross-entropy", "quadratic", "log-likelihood", "hinge"]),
    dropout=st.one_of(st.floats(-1, 2), st.just(float("nan"))),
)
def test_building_a_network_from_any_options_raises_only_config_errors(sizes, activation, cost, dropout):
    try:
        Network(sizes, activation=activation, cost=cost, dropout=dropout, rng=np.random.default_rng(0))
    except RedesCoreError:
        pass
