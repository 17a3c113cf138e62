"""Networks: static descriptions with pure ``init`` / ``apply``."""

from rulelab.nets.mlp import ACTIVATIONS, Activity, Network, mlp

__all__ = ["ACTIVATIONS", "Activity", "Network", "mlp"]
