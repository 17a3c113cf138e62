"""The peer: a plain PyTorch (CPU) per-run training loop of the same network, rule and optimizer.

What a PyTorch user writes: sample a batch, forward, loss, ``backward()``, ``Adam.step()``, one run after another.
Feedback alignment uses a custom ``autograd.Function`` whose backward sends the error through a fixed random
matrix ``B`` (shaped like ``Wᵀ``) instead of ``Wᵀ`` (Lillicrap et al. 2016), as rulelab's rule does.

Torch's thread count is ``THREADS`` (``set_threads``; the benchmarks pass ``--torch-threads``, default PyTorch's own
default of one per core). Measured on the idle 2-core machine: the digits MLP runs at 40k examples/s on one thread
and 38k on two, the 784-256-256-10 MLP at 18k and 23k. On a loaded machine two threads are much worse (OpenMP's
barriers wait for both threads to be scheduled: ~300 ms per digits step at a load average of 15), so pass
``--torch-threads 1`` there. Torch is optional (``pip install -e '.[bench]'``); ``available()`` says whether it is
installed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

try:
    import torch
except ImportError:  # the benchmarks skip the PyTorch column with a message
    torch = None

TORCH_RULES = {"mlp": ("backprop", "feedback_alignment"), "recurrent": ("backprop",)}
WARMUP_STEPS = 5


def available() -> bool:
    return torch is not None


THREADS: list[int | None] = [None]  # None: PyTorch's default


def set_threads(count: int | None) -> None:
    """Threads every trainer made from now on uses (None: PyTorch's default, one per core)."""
    THREADS[0] = count


def _use_threads() -> None:
    if THREADS[0] is not None:
        torch.set_num_threads(THREADS[0])


if torch is not None:

    class _FeedbackAlignmentLinear(torch.autograd.Function):
        """y = x W + b; the backward pass sends the error through the fixed B (shaped like Wᵀ): grad_x = grad_y B."""

        @staticmethod
        def forward(ctx, x, weight, bias, feedback):
            ctx.save_for_backward(x, feedback)
            return x @ weight + bias

        @staticmethod
        def backward(ctx, grad_output):
            x, feedback = ctx.saved_tensors
            return grad_output @ feedback, x.T @ grad_output, grad_output.sum(0), None


def _mlp(sizes: tuple[int, ...], rule: str, seed: int):
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weight = (torch.randn(fan_in, fan_out, generator=generator) / fan_in**0.5).requires_grad_()
        bias = torch.zeros(fan_out, requires_grad=True)
        feedback = torch.randn(fan_out, fan_in, generator=generator) / fan_in**0.5
        layers.append((weight, bias, feedback))

    def forward(x):
        h = x
        for index, (weight, bias, feedback) in enumerate(layers):
            if rule == "feedback_alignment":
                h = _FeedbackAlignmentLinear.apply(h, weight, bias, feedback)
            else:
                h = h @ weight + bias
            if index < len(layers) - 1:
                h = torch.tanh(h)
        return h

    return forward, [p for weight, bias, _ in layers for p in (weight, bias)]


def _warmed_up(step: Callable[[], None]) -> Callable[[], None]:
    for _ in range(WARMUP_STEPS):
        step()
    return step


def mlp_trainer(sizes, rule, x_train: np.ndarray, y_train: np.ndarray, *, batch_size: int,
                learning_rate: float = 1e-3, seed: int = 0) -> Callable[[], None]:
    """``step()`` of one run of an MLP (tanh hidden layers) trained by ``rule`` with Adam (already warmed up)."""
    _use_threads()
    forward, parameters = _mlp(tuple(sizes), rule, seed)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    generator = torch.Generator().manual_seed(seed + 1)

    def step():
        index = torch.randint(0, x_train.shape[0], (batch_size,), generator=generator)
        loss = torch.nn.functional.cross_entropy(forward(x_train[index]), y_train[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return _warmed_up(step)


def lstm_trainer(num_inputs: int, hidden: int, num_actions: int, inputs: np.ndarray, actions: np.ndarray,
                 returns: np.ndarray, *, episodes: int, learning_rate: float = 1e-3,
                 seed: int = 0) -> Callable[[], None]:
    """``step()`` of BPTT for one LSTM agent (cell + policy and value readouts) on ``episodes`` sequences."""
    _use_threads()
    torch.manual_seed(seed)
    cell = torch.nn.LSTMCell(num_inputs, hidden)
    policy, value = torch.nn.Linear(hidden, num_actions), torch.nn.Linear(hidden, 1)
    parameters = [*cell.parameters(), *policy.parameters(), *value.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    inputs, actions, returns = (torch.from_numpy(a) for a in (inputs, actions, returns))
    generator = torch.Generator().manual_seed(seed + 1)

    def step():
        index = torch.randint(0, inputs.shape[0], (episodes,), generator=generator)
        x, a, r = inputs[index], actions[index].long(), returns[index]
        h = c = torch.zeros(episodes, hidden)
        loss = 0.0
        for t in range(x.shape[1]):
            h, c = cell(x[:, t], (h, c))
            loss = loss + torch.nn.functional.cross_entropy(policy(h), a[:, t]) \
                + 0.5 * torch.mean((value(h)[:, 0] - r[:, t]) ** 2)
        optimizer.zero_grad(set_to_none=True)
        (loss / x.shape[1]).backward()
        optimizer.step()

    return _warmed_up(step)
