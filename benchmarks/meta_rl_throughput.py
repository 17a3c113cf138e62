"""Meta-RL training throughput: episodes per second, a batch of episodes vmapped in one compiled training step
versus a Python loop over single-episode training steps.

    python benchmarks/meta_rl_throughput.py                          # defaults below
    python benchmarks/meta_rl_throughput.py --learners meta_a2c --batches 32,256 --repeats 3
    python benchmarks/meta_rl_throughput.py --learners backpropamine --update-chunk 0   # update not chunked

For each learner (rulelab.harness.meta_rl.LEARNERS) on the independent-bandit task (100 trials per episode):
- vmapped: one jitted call trains on ``B`` episodes at once (``episodes_per_update = B``);
- loop: a Python loop calling the jitted one-episode training step (``episodes_per_update = 1``) ``B`` times.
Also the frozen-evaluation rate (vmapped rollouts of 1000 episodes versus a loop of single jitted rollouts).
Compile time is excluded and reported separately; timings are medians; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp

from measure import format_table, median_seconds, run_context, write_result
from rulelab.harness.meta_rl import LEARNERS
from rulelab.harness.rl import RLTrainConfig, agent_policy, evaluate_policy, make_rl_train
from rulelab.tasks.rl import make_meta_task


def training_call(task, learner, episodes_per_update: int):
    """A warmed-up, blocking call of one jitted training update on ``episodes_per_update`` episodes, and its
    compile time."""
    config = RLTrainConfig(num_updates=1, episodes_per_update=episodes_per_update,
                           segment_length=learner.segment_length, optimizer=learner.optimizer, log_every=1,
                           update_chunk=learner.update_chunk)
    agent = learner.make_agent(task)
    init, run = make_rl_train(task, agent, learner.make_rule, config)
    hparams = {k: jnp.asarray(v, jnp.float32) for k, v in learner.hparams.items()}
    state = jax.jit(init)(jax.random.key(0), hparams)
    step = jax.jit(lambda s: run(s, hparams, 1))
    start = time.perf_counter()
    jax.block_until_ready(step(state))
    compile_seconds = time.perf_counter() - start
    return (lambda: jax.block_until_ready(step(state))), compile_seconds, agent, state.params


def evaluation_rates(task, agent, params, episodes: int, repeats: int) -> dict:
    vmapped = jax.jit(lambda k: evaluate_policy(task, agent_policy(task, agent, params), k, episodes))
    single = jax.jit(lambda k: evaluate_policy(task, agent_policy(task, agent, params), k, 1))
    key = jax.random.key(1)
    jax.block_until_ready(vmapped(key)), jax.block_until_ready(single(key))
    loop_episodes = max(1, episodes // 20)
    vmapped_seconds = median_seconds(lambda: jax.block_until_ready(vmapped(key)), repeats=repeats)
    loop_seconds = median_seconds(lambda: [jax.block_until_ready(single(key)) for _ in range(loop_episodes)],
                                  repeats=repeats)
    return {"eval_vmapped_episodes_per_s": episodes / vmapped_seconds,
            "eval_loop_episodes_per_s": loop_episodes / loop_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", default="meta_a2c,neuromodulated_td")
    parser.add_argument("--batches", default="32,256", help="episodes per vmapped update")
    parser.add_argument("--loop-episodes", type=int, default=16, help="episodes timed in the Python loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--update-chunk", type=int, default=None,
                        help="override each learner's update_chunk (episodes per vmapped piece of the update)")
    parser.add_argument("--name", default="meta_rl_throughput")
    args = parser.parse_args()
    task = make_meta_task("bandit-independent")
    rows = []
    for name in args.learners.split(","):
        learner = LEARNERS[name]
        if args.update_chunk is not None:
            learner = dataclasses.replace(learner, update_chunk=args.update_chunk)
        single, single_compile, agent, params = training_call(task, learner, 1)
        loop_seconds = median_seconds(lambda: [single() for _ in range(args.loop_episodes)], repeats=args.repeats)
        loop_rate = args.loop_episodes / loop_seconds
        for batch in (int(b) for b in args.batches.split(",")):
            call, compile_seconds, _, _ = training_call(task, learner, batch)
            rate = batch / median_seconds(call, repeats=args.repeats)
            rows.append({"learner": name, "episodes_per_update": batch, "update_chunk": learner.update_chunk,
                         "vmapped_episodes_per_s": rate,
                         "loop_episodes_per_s": loop_rate, "speedup": rate / loop_rate,
                         "compile_s": compile_seconds, "loop_compile_s": single_compile})
        rows[-1].update(evaluation_rates(task, agent, params, 1000, args.repeats))
        print(format_table([r for r in rows if r["learner"] == name], [
            ("learner", "learner", "s"), ("episodes_per_update", "batch", "d"),
            ("vmapped_episodes_per_s", "vmap ep/s", ".1f"), ("loop_episodes_per_s", "loop ep/s", ".1f"),
            ("speedup", "speedup", ".1f"), ("compile_s", "compile s", ".1f")]), flush=True)
    path = write_result(args.name, {"context": run_context(), "task": task.name,
                                    "episode_length": task.episode_length, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
