"""Every registered environment x encoding, with both embedded models and both agent modes."""

from __future__ import annotations

import pytest

from harness.config import RunConfig
from harness.records import iter_steps
from harness.runner import Runner
from harness.validate import validate_run
from textenvs import ENVS, encodings_for, make_env

#: Environments with an exact tabular MDP (gridworlds), whose state records index it.
GRIDWORLDS = [e.name for e in ENVS if callable(getattr(e.load(), "mdp", None))]
CASES = [(env, enc) for env in [e.name for e in ENVS] for enc in encodings_for(env)]


@pytest.mark.model
@pytest.mark.parametrize("env, encoding", CASES)
@pytest.mark.parametrize("model, mode", [("smollm2", "choose"), ("smollm2", "generate"), ("gemma", "choose"), ("gemma", "generate")])
def test_every_env_and_encoding_runs_with_each_model(request, tmp_path, env, encoding, model, mode):
    backend = request.getfixturevalue(f"{model}_backend")
    options = {"analysis": "off"} if env == "chess" else {}
    cfg = RunConfig(env=env, encoding=encoding, mode=mode, episodes=1, max_steps=2, max_new_tokens=6,
                    max_retries=0, env_options=options, model=model)
    run = Runner(cfg, backend).run(tmp_path / "run")
    assert validate_run(run) == []
    steps = list(iter_steps(run))
    assert steps and all(s["action"] in s["legal_actions"] for s in steps)
    if env in GRIDWORLDS:
        mdp = make_env(env).mdp()
        for s in steps:
            assert 0 <= s["state"]["index"] < mdp.n_states
            assert s["action"] in mdp.action_names
