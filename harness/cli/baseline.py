"""``zso baseline``: plan or train a reference agent, then run it like a model."""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from typing import Any

from harness.agents import BASELINES, BaselineError, BaselineOptions, baseline_options, baseline_spec, build_reference_agent, training_units
from harness.cli.console import ProgressBar, console, run_and_report
from harness.config import RunConfig


def add_parsers(subparsers: Any) -> None:
    """Add ``zso baseline`` to the ``zso`` command's subparsers."""
    p = subparsers.add_parser(
        "baseline", help="run an RL baseline (random, optimal, soft-optimal, q-learning, ppo, stockfish)",
        description="Plan or train an RL baseline on an environment, then run it like a model: "
        "same run directory, summary and validation.",
    )
    p.add_argument("--env", required=True, help="environment id (zso envs)")
    p.add_argument("--variant", help="named preset of the environment (zso envs)")
    p.add_argument("-o", "--env-option", action="append", metavar="KEY=VALUE", help="environment option (repeatable)")
    p.add_argument("--agent", required=True, metavar="AGENT", help=f"one of: {', '.join(BASELINES.names())}")
    p.add_argument("--temperature", type=float, default=BaselineOptions.temperature, help="soft-optimal: softmax temperature (default 1)")
    p.add_argument("--discount", type=float, default=BaselineOptions.discount, help="optimal, soft-optimal, q-learning, ppo: gamma (default 0.99)")
    p.add_argument("--train-episodes", type=int, default=BaselineOptions.train_episodes, help="q-learning: training episodes")
    p.add_argument("--train-steps", type=int, default=BaselineOptions.train_steps, help="ppo: training environment steps")
    p.add_argument("--depth", type=int, default=BaselineOptions.depth, help="stockfish: search depth in plies")
    p.add_argument("--skill", type=int, help="stockfish: skill level 0-20 (default 20)")
    p.add_argument("--feature", help="feature-seeker: the named MDP feature whose gains it maximises (e.g. keys_held)")
    p.add_argument("--weights", metavar="NAME=W,...",
                   help="state-blind: weight per action name, e.g. down=0.4,right=0.4,left=0.1,up=0.1 (* = every other name)")
    p.add_argument("--weights-from", metavar="RUN_DIR",
                   help="state-blind: the weights of a run's mean probability per action name (its label bias, without the state)")
    p.add_argument("--position-decay", type=float, default=BaselineOptions.position_decay,
                   help="list-position: probability ratio of each listed action to the one before (default 0.5; 0 = always the first)")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes (default 10)")
    p.add_argument("--episodes-target", type=float, metavar="HALF_WIDTH",
                   help="stop early, in rounds of 4 episodes, once GD's anytime-valid 95%% interval excludes 0 "
                        "or is at most this wide on either side; --episodes is then the most to play")
    p.add_argument("--max-steps", type=int, default=100, help="decisions per episode, training and evaluation (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seeds training and the evaluation episodes")
    p.add_argument("--encoding", help="encoding recorded with the steps (default: the env's first)")
    p.add_argument("--out", metavar="DIR", help="run directory (default results/<time>-<env>-...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_baseline)


def baseline_config(args: argparse.Namespace) -> RunConfig:
    """The run configuration of ``zso baseline`` arguments (validated against the schema)."""
    from harness.config import parse_key_values, resolve_config
    from textenvs import ENVS, encodings_for

    agent = baseline_spec(args.agent, BaselineOptions(
        temperature=args.temperature, discount=args.discount, train_episodes=args.train_episodes,
        train_steps=args.train_steps, depth=args.depth, skill=args.skill, feature=args.feature,
        weights=_weights(args), position_decay=args.position_decay,
    ))
    ENVS.entry(args.env)
    encoding = args.encoding
    if encoding is None:
        known = encodings_for(args.env)
        if not known:
            raise BaselineError(f"environment {args.env!r} has no registered encoding")
        encoding = known[0]
    return resolve_config(
        None, env=args.env, variant=args.variant, encoding=encoding, agent=asdict(agent),
        episodes=args.episodes, episodes_target=args.episodes_target, max_steps=args.max_steps, seed=args.seed,
        env_options=parse_key_values(args.env_option, "--env-option") or None, out=args.out,
    )


def _run_label(config: RunConfig) -> str:
    """The agent's name in default run directory names, with the options it was given other than the defaults."""
    defaults = asdict(BaselineOptions())
    given = [f"{key}{value:g}" if isinstance(value, float) else f"{key}{value}"
             for key, value in config.agent.options.items()
             if value != defaults.get(key) and isinstance(value, (str, int, float))]
    return "-".join([config.agent.name, *given])


def build_agent(config: RunConfig, no_progress: bool = False) -> Any:
    """Plan or train the reference agent of baseline run ``config``, with a progress bar for training."""
    units = training_units(config.agent.name, baseline_options(config.agent.options))
    if units is None:
        with console.status(f"preparing {config.agent.name} on {config.env}"):
            return build_reference_agent(config)
    unit, total = units
    with ProgressBar(f"training {config.agent.name}", total, unit, no_progress) as update:
        return build_reference_agent(config, update)


def _weights(args: argparse.Namespace) -> tuple[tuple[str, float], ...] | None:
    """``--weights`` parsed, or ``--weights-from`` fitted (not both)."""
    from harness.agents.controls import action_frequencies, parse_weights

    if args.weights is not None and args.weights_from is not None:
        raise BaselineError("give --weights or --weights-from, not both")
    if args.weights is not None:
        return parse_weights(args.weights)
    if args.weights_from is not None:
        return action_frequencies(args.weights_from)
    return None


def cmd_baseline(args: argparse.Namespace) -> int:
    """``zso baseline``: plan or train, run, print the summary; 0 on success."""
    from harness.runner import Runner, default_run_dir
    from textenvs import get_encoding

    config = baseline_config(args)
    get_encoding(config.env, config.encoding)  # a bad encoding fails before training
    if config.out is None:
        config = replace(config, out=str(default_run_dir(config, label=_run_label(config))))
    agent = build_agent(config, args.no_progress)
    try:
        with Runner(config, agent=agent) as runner:
            return run_and_report(runner, config.episodes, args.no_progress)
    finally:
        agent.close()
