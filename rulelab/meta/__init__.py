"""Meta-learning through learning itself: gradients (``jax.grad`` through the unrolled inner loop) and evolution
strategies (evosax) over rule coefficients and numeric hyperparameters."""

from rulelab.meta.evolution import EVOLUTION_STRATEGIES, meta_train_evolution
from rulelab.meta.gradient import finite_difference_gradient, meta_train_gradient, relative_error
from rulelab.meta.inner import harness_final_state, train_with_rule
from rulelab.meta.unroll import unroll

__all__ = [
    "EVOLUTION_STRATEGIES", "finite_difference_gradient", "harness_final_state", "meta_train_evolution",
    "meta_train_gradient", "relative_error", "train_with_rule", "unroll",
]
