"""Experience replay: reservoir sampling keeps a uniform sample of the stream; replayed examples reach the rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import rulelab
from rulelab.core import Batch
from rulelab.rules.replay import reservoir_slots


def test_reservoir_fills_then_keeps_a_uniform_sample():
    capacity, batch_size, num_batches = 20, 10, 30  # a stream of 300 items into 20 slots

    def run(key):
        def insert(buffer_and_seen, step_key):
            buffer, seen = buffer_and_seen
            items = seen + jnp.arange(batch_size)
            slots = reservoir_slots(step_key, seen, batch_size, capacity)
            return (buffer.at[slots].set(items, mode="drop"), seen + batch_size), None

        (buffer, _), _ = jax.lax.scan(insert, (-jnp.ones(capacity, jnp.int32), jnp.zeros((), jnp.int32)),
                                      jax.random.split(key, num_batches))
        return buffer

    first_slots = reservoir_slots(jax.random.key(0), jnp.zeros((), jnp.int32), batch_size, capacity)
    np.testing.assert_array_equal(first_slots, np.arange(batch_size))  # room left: items go in order
    buffers = np.asarray(jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(1), 2000)))
    inclusion = np.bincount(buffers.ravel(), minlength=300) / 2000.0  # P(item in the final buffer)
    assert buffers.min() >= 0  # the buffer is full
    # every item, early or late, is kept with probability capacity / stream length = 1/15
    np.testing.assert_allclose(inclusion.reshape(10, 30).mean(axis=1), 1 / 15, atol=0.01)


def test_replayed_examples_enter_the_inner_update():
    """The inner rule sees the batch plus as many buffer examples, so its update averages over twice as many."""
    net = rulelab.mlp((4, 3), "linear")
    rule = rulelab.make_rule("experience_replay", net, buffer_size=8)
    backprop = rulelab.make_rule("backprop", net)
    params = net.init(jax.random.key(0))
    state = rule.init(jax.random.key(1), params)
    old = Batch(jnp.ones((4, 4)), jnp.zeros(4, jnp.int32))
    for step in range(2):  # fill the 8 slots with the old examples
        _, state, _ = rule.update(params, state, old, key=jax.random.key(step))
    assert int(state.seen) == 8
    new = Batch(-jnp.ones((4, 4)), jnp.full(4, 2, jnp.int32))
    updates, state, metrics = rule.update(params, state, new, key=jax.random.key(5))
    # the slots the new batch took (if any) hold new examples; every replayed example is an old or a new one,
    # so the update is a mixture: compare with backprop on the batch the replay drew
    _, replay_key, _ = jax.random.split(jax.random.key(5), 3)
    index = jax.random.randint(replay_key, (4,), 0, 8)
    combined = Batch(jnp.concatenate([new.x, state.buffer_x[index]]), jnp.concatenate([new.y, state.buffer_y[index]]))
    expected, _, expected_metrics = backprop.update(params, backprop.init(jax.random.key(0), params), combined,
                                                    key=jax.random.key(0))
    for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(metrics["loss"], expected_metrics["loss"], rtol=1e-6)
