"""Built-in learning rules; importing this package registers them (one module per family)."""

import importlib

BUILTIN_RULE_MODULES = (
    "backprop",
    "feedback_alignment",
    "neuromodulated_td",
    "force",
    "parameterized_plasticity",
    "regularization",
    "replay",
    "predictive_coding",
    "equilibrium_propagation",
    "burstprop",
)

for _module in BUILTIN_RULE_MODULES:
    importlib.import_module(f"rulelab.rules.{_module}")
