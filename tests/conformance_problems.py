"""The default conformance problem: a teacher–student classification task for supervised-MLP rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp

import rulelab
from rulelab.core import Batch, ConformanceProblem

INPUTS, HIDDEN, CLASSES, BATCH = 8, 16, 4, 32


def teacher_student_problem() -> ConformanceProblem:
    teacher = rulelab.mlp((INPUTS, 12, CLASSES), "tanh")
    teacher_params = jax.tree.map(lambda w: 3.0 * w, teacher.init(jax.random.key(1234)))
    student = rulelab.mlp((INPUTS, HIDDEN, HIDDEN, CLASSES), "tanh")

    def sample_batch(key):
        x = jax.random.normal(key, (BATCH, INPUTS))
        return Batch(x, jnp.argmax(teacher.apply(teacher_params, x)[0], axis=-1))

    def loss(params, batch):
        return rulelab.softmax_cross_entropy(student.apply(params, batch.x)[0], batch.y)

    return ConformanceProblem(student, student.init, sample_batch, loss, {}, learning_rate=0.1, steps=300)
