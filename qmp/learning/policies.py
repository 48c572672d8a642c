"""Behaviour policies: which action is executed in task i. Training never looks here.

`OwnPolicy`: task i runs pi_i (every non-QMP method, and all headline evaluation).
`QSwitchMixture`: the QMP behaviour policy. For task i every policy j proposes an action for s_i,
task i's critic scores the proposals and the best one is executed; the paper's ablations replace that
rule (a softmax over the scores, a uniform or a fixed per-env mixture) or add the entropy term.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from qmp.environments.multitask import Episode
from qmp.learning.foreign import CriticList, PolicyList
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy, tanh_gaussian_log_prob
from qmp.methods import QSWITCH_ACTIONS, QSWITCH_RULES, QSWITCH_SCORES


def sample_rows(probs: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draw of one column per row: probs (T, K) >= 0 (rows need not sum to 1), u (T,) in [0, 1)
    -> (T,) the first k with cumsum(probs[i])[k] > u_i * sum(probs[i]); never a zero-probability column."""
    cdf = probs.cumsum(-1)
    picked = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    last_positive = ((probs > 0) * torch.arange(probs.shape[-1], device=probs.device)).amax(-1)
    return torch.minimum(picked, last_positive)  # u * total rounded up to total in float arithmetic


class OwnPolicy:
    """Task i acts with pi_i. `single_tanh`: a double-squashed policy samples tanh(mu + sigma * eps), as the
    Q-switch draws its candidates (--collect_single_tanh, an ablation)."""

    def __init__(self, policy: TanhGaussianPolicy, single_tanh: bool = False) -> None:
        self.policy, self.single_tanh = policy, single_tanh

    @torch.no_grad()
    def act(self, obs: Tensor, elapsed: np.ndarray | None = None, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """obs (T, O) -> actions (T, A) and the policy used per task (T,) (always its own)."""
        action = self.policy.act(obs.unsqueeze(1), deterministic, single_tanh=self.single_tanh)[0].squeeze(1)
        return action, torch.arange(obs.shape[0], device=obs.device)

    def episodes_ended(self, episodes: list[Episode]) -> None:
        """Collection reports finished training episodes (MT-Levy's success rates use them)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class QSwitchMixture:
    """The Q-switch, with all T x T candidates in one policy and one critic forward pass.

    Default = the original's shipped rule: score_j = Q1_i(s_i, tanh(mu_j(s_i))), hard argmax (ties to
    the lowest index), execute the winner's *sampled* action. `score` ("q1" | "min" | "mean" of the
    twin critics) and `score_action` ("mean" | "sample") select the alternatives; `entropy` adds the
    paper's entropy term, -alpha_i log pi_j(a_j | s_i) of the scored action. `rule` picks the policy:
    "argmax" (QMP), "softmax" (drawn with probability exp(score / temperature), normalised), "uniform"
    (QMP-Uniform: any policy, no critic) or "domain" (QMP-Domain-Knowledge: row i of `mixture`, T x T).
    With `sampling_freq` k > 1 the choice is re-made every k steps of an episode and kept in between,
    drawing fresh actions from the chosen policy (squashed twice on those steps with a `double_tanh` policy,
    as the original's multihead head acted; the candidates are single-tanh). Deterministic mode executes the
    chosen policy's mean; its choice is the argmax for both Q-switch rules (the mixture evaluation is greedy).
    `PolicyList` / `CriticList` put your own per-task modules in place of the batched networks (every rule
    but the entropy term, which needs the batched policy's log-probabilities).
    """

    def __init__(
        self,
        policy: TanhGaussianPolicy | PolicyList,
        critic: DoubleQ | CriticList,
        num_tasks: int,
        sampling_freq: int = 1,
        score: str = "q1",
        score_action: str = "mean",
        rule: str = "argmax",
        temperature: float = 1.0,
        entropy: bool = False,
        mixture: Tensor | None = None,
        log_alpha: Tensor | None = None,
    ) -> None:
        if score not in QSWITCH_SCORES:
            raise ValueError(f"unknown Q-switch score {score!r}; valid: {', '.join(QSWITCH_SCORES)}")
        if score_action not in QSWITCH_ACTIONS:
            raise ValueError(f"unknown Q-switch action {score_action!r}; valid: {', '.join(QSWITCH_ACTIONS)}")
        if rule not in QSWITCH_RULES:
            raise ValueError(f"unknown Q-switch rule {rule!r}; valid: {', '.join(QSWITCH_RULES)}")
        if entropy and log_alpha is None:
            raise ValueError("the entropy term needs the temperatures (log_alpha)")
        if entropy and isinstance(policy, PolicyList):
            raise ValueError("the entropy term needs the batched TanhGaussianPolicy (its log-probabilities)")
        if rule in ("uniform", "domain"):
            mixture = torch.ones(num_tasks, num_tasks) if rule == "uniform" else mixture
            if mixture is None or mixture.shape != (num_tasks, num_tasks) or not bool((mixture.sum(1) > 0).all()):
                raise ValueError(f"rule {rule!r} needs a {num_tasks} x {num_tasks} mixture with positive rows")
        self.policy, self.critic, self.num_tasks = policy, critic, num_tasks
        self.sampling_freq, self.score, self.score_action = sampling_freq, score, score_action
        self.rule, self.temperature, self.entropy, self.log_alpha = rule, temperature, entropy, log_alpha
        self.mixture = mixture
        self.choice = torch.arange(num_tasks)

    @torch.no_grad()
    def scores(self, obs: Tensor, candidates: Tensor, log_prob: Tensor | None = None) -> Tensor:
        """Q_i(s_i, a_ji) for candidates (T_j, T_i, A) -> scores (T_i, T_j); with log_prob (T_j, T_i) =
        log pi_j(a_ji | s_i), the paper's entropy bonus -alpha_i log pi_j(a_ji | s_i) is added."""
        t = self.num_tasks
        states = obs.unsqueeze(1).expand(t, t, obs.shape[-1])  # row i: s_i once per candidate
        if self.score == "q1":
            q = self.critic.q1(states, candidates.transpose(0, 1))
        else:
            both = self.critic(states, candidates.transpose(0, 1))  # (2, T_i, T_j)
            q = both.min(0).values if self.score == "min" else both.mean(0)
        if log_prob is None:
            return q
        assert self.log_alpha is not None
        alpha = self.log_alpha.detach().exp().to(obs.device).expand(t).unsqueeze(1)  # (T_i, 1); one for `sac`
        return q - alpha * log_prob.transpose(0, 1)

    @torch.no_grad()
    def act(self, obs: Tensor, elapsed: np.ndarray | None = None, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """obs (T, O) -> executed actions (T, A) and the chosen policy per task (T,)."""
        t = self.num_tasks
        self.choice = self.choice.to(obs.device)
        proposals = obs.unsqueeze(0).expand(t, t, obs.shape[-1])  # row j: every task's state for pi_j
        if elapsed is None or self.sampling_freq == 1:  # decided on the host: no device sync per step
            reselect: np.ndarray | None = None
        else:
            reselect = elapsed % self.sampling_freq == 0
        # --multihead_double_tanh: a task that keeps its policy draws it as that head acts, squashed twice
        holds = bool(not deterministic and reselect is not None and not reselect.all()
                     and self.policy.double_tanh)
        log_prob = kept = None
        if self.entropy or holds:
            sample, mean, log_prob, kept = self._candidates(proposals, deterministic, holds)
        else:
            sample, mean = self.policy.act(proposals, deterministic, single_tanh=True)  # (T_j, T_i, A)
        if reselect is None or reselect.any():
            scored = mean if (self.score_action == "mean" or deterministic) else sample
            best = self._select(obs, scored, log_prob, deterministic)
            self.choice = (best if reselect is None
                           else torch.where(torch.as_tensor(reselect, device=obs.device), best, self.choice))
        executed = (mean if deterministic else sample).transpose(0, 1)  # (T_i, T_j, A)
        if kept is not None:
            assert reselect is not None
            held = torch.as_tensor(~reselect, device=obs.device).view(t, 1, 1)
            executed = torch.where(held, kept.transpose(0, 1), executed)
        action = executed[torch.arange(t, device=obs.device), self.choice]
        return action, self.choice.clone()

    def _select(self, obs: Tensor, scored: Tensor, log_prob: Tensor | None, deterministic: bool) -> Tensor:
        """The policy each task executes next (T,), by the rule."""
        if self.mixture is not None:  # uniform / domain: no critic
            mixture = self.mixture.to(obs.device)
            return sample_rows(mixture, torch.rand(self.num_tasks, device=obs.device))
        scores = self.scores(obs, scored, log_prob)
        if self.rule == "argmax" or deterministic:
            return scores.argmax(-1)
        probs = torch.softmax(scores / self.temperature, dim=-1)
        return sample_rows(probs, torch.rand(self.num_tasks, device=obs.device))

    def _candidates(self, proposals: Tensor, deterministic: bool,
                    doubled: bool = False) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """policy.act's single-tanh (sample, mean), drawing the same noise; log pi_j of the action the critic
        scores (the mean, at zero noise, or the sample) with the entropy term; with `doubled`, the same noise
        squashed twice, tanh(tanh(mu) + sigma * eps) (what a held double-tanh head executes). Each (T_j, T_i, ...)."""
        mu, log_std = self.policy.distribution(proposals)
        mean = torch.tanh(mu)
        noise = torch.zeros_like(mu) if deterministic else torch.randn_like(mu)
        sample = mean if deterministic else torch.tanh(mu + log_std.exp() * noise)
        kept = torch.tanh(mean + log_std.exp() * noise) if doubled else None
        if not self.entropy:
            return sample, mean, None, kept
        if self.score_action == "mean" or deterministic:
            return sample, mean, tanh_gaussian_log_prob(torch.zeros_like(mu), log_std, mean), kept
        return sample, mean, tanh_gaussian_log_prob(noise, log_std, sample), kept

    def episodes_ended(self, episodes: list[Episode]) -> None:
        """Nothing to learn from finished episodes: the Q-switch reads the critics."""

    def state_dict(self) -> dict:
        return {"choice": self.choice.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.choice = state["choice"].clone()
