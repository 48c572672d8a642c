"""The methods of the paper as plain data: what each one collects with, trains on and requires.

Kept free of torch so that the CLI validates flags in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

ARCHITECTURES = ("separate", "multihead", "shared")
QSWITCH_SCORES = ("q1", "min", "mean")  # which critic scores a Q-switch candidate
QSWITCH_ACTIONS = ("mean", "sample")  # which candidate action the critic scores
QSWITCH_RULES = ("argmax", "softmax", "uniform", "domain")  # how task i picks the executed policy (paper ablations)
NOT_SEPARATE = ("multihead", "shared")


@dataclass(frozen=True)
class Method:
    paper_name: str
    qswitch: bool  # collect with the Q-switch mixture (QMP) instead of each task's own policy
    sharing: bool  # train on UDS-shared data
    sac_family: bool  # sac/mtsac schedule: G updates of a total batch, total warm-up, exp alpha loss
    shared_alpha: bool = False  # sac: one temperature
    architectures: tuple[str, ...] = ("separate",)  # allowed for both policy and critics
    allows_kl: bool = False
    levy: bool = False  # collect with MT-Levy (Lee et al., IROS 2025) instead of each task's own policy
    q_architectures: tuple[str, ...] | None = None  # allowed for the critics, if not `architectures`
    multi_critic: bool = False  # MCAL: one shared actor trained by every task's own critic
    decaf_critics: bool = False  # DECAF: task i's Q mixes every task's Q with learned weights
    # the default of --multihead_double_tanh: the QMP code's multihead policy squashed twice; MT-Levy's released
    # multihead actor squashes once
    squashes_multihead_twice: bool = True


METHODS: dict[str, Method] = {
    "sac": Method("single-network SAC", False, False, True, shared_alpha=True, architectures=NOT_SEPARATE),
    "mtsac": Method("Parameters (MTSAC)", False, False, True, architectures=NOT_SEPARATE),
    "dnc_sac": Method("Separated", False, False, False, allows_kl=True),
    "qmp_dnc": Method("Separated + QMP", True, False, False, allows_kl=True),
    "qmp_sac": Method("Parameters + QMP", True, False, True, architectures=NOT_SEPARATE),
    "uds_dnc": Method("Data (UDS)", False, True, False),
    "qmp_uds_dnc": Method("Data + QMP", True, True, False),
    "mtlevy_dnc": Method("Separated + MT-Lévy", False, False, False, allows_kl=True, levy=True),
    "mtlevy_sac": Method("Parameters + MT-Lévy", False, False, True, architectures=NOT_SEPARATE, levy=True,
                         squashes_multihead_twice=False),
    "mcal": Method("Multi-Critic Actor Learning (MCAL)", False, False, False, shared_alpha=True,
                   architectures=("multihead",), q_architectures=("separate",), multi_critic=True),
    "qmp_mcal": Method("MCAL + QMP", True, False, False, shared_alpha=True, architectures=("multihead",),
                       q_architectures=("separate",), multi_critic=True),
    "decaf": Method("DECAF", False, False, False, decaf_critics=True),
}


def check_method(method: Method, name: str, policy_arch: str, q_arch: str, kl_coeff: list[float],
                 include_task_id: bool) -> str | None:
    """The reason a flag combination is invalid for this method, or None."""
    q_archs = method.q_architectures or method.architectures
    for flag, arch, valid in (("--policy_architecture", policy_arch, method.architectures),
                              ("--Q_architecture", q_arch, q_archs)):
        if arch not in valid:
            return f"{name} needs {flag} in {{{', '.join(valid)}}}, got {arch!r}"
    if any(kl_coeff) and not method.allows_kl:
        takers = ", ".join(n for n, m in METHODS.items() if m.allows_kl)
        return f"{name} does not take --kl_coeff (only {takers} do), got {kl_coeff}"
    if (method.qswitch or method.levy) and include_task_id:
        return f"{name} needs --include_task_id false (its mixture asks every policy about task i's state)"
    if "shared" in (policy_arch, q_arch) and not include_task_id and name != "sac":
        return f"{name} with a shared network needs --include_task_id true to tell the tasks apart"
    return None
