"""What a probe trains on: one split's token hidden states and gold tuples (`ProbeData`), and the
gathering of a batch's rows from those hidden states.

Batches are gathered from one flat (tokens, hidden) array by index, with no per-snippet Python;
the array may be a float16 memory map, of which only the gathered rows are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from codeprobe.errors import InputError
from codeprobe.probes.astprobe.tuple_batch import TupleBatch


@dataclass(frozen=True, eq=False)
class ProbeData:
    """One split of one language at one hidden state: token hidden states and gold tuples.

    Attributes:
        hidden_states: (N, hidden) token hidden states of all snippets back to back (float16 or
            float32, numpy or torch; a memory map is fine: only gathered rows are read).
        gold: the gold (d, c, u) of the same snippets (label strings kept for scoring).
        language: canonical language name.
    """

    hidden_states: np.ndarray | torch.Tensor
    gold: TupleBatch
    language: str

    def __post_init__(self) -> None:
        n_tok = int(self.gold.lengths.sum())
        if self.hidden_states.shape[0] != n_tok:
            raise InputError(f"{self.hidden_states.shape[0]} token hidden states for {n_tok} tokens")
        if (self.gold.lengths < 2).any():
            raise InputError("AST-Probe needs snippets of at least 2 tokens")

    def __len__(self) -> int:
        return len(self.gold)

    @property
    def hidden(self) -> int:
        return int(self.hidden_states.shape[1])


def as_list(x: ProbeData | Sequence[ProbeData]) -> list[ProbeData]:
    """One split, or one per language, as a list."""
    return [x] if isinstance(x, ProbeData) else list(x)


def gather(hidden_states: np.ndarray | torch.Tensor, tok: np.ndarray, out: torch.Tensor) -> torch.Tensor:
    """Copy rows `tok` of `hidden_states` into `out` (float32 (n, hidden)), converting as it goes."""
    if isinstance(hidden_states, torch.Tensor):
        return out.copy_(hidden_states[torch.as_tensor(tok)])
    return out.copy_(torch.from_numpy(np.asarray(hidden_states[tok])))


def stack(
    hidden_states: Sequence[np.ndarray | torch.Tensor],
    tok: np.ndarray,
    device: str,
    gathered: dict[int, torch.Tensor],
) -> torch.Tensor:
    """float32 (S, n, hidden): rows `tok` of each of `hidden_states`. `gathered` remembers the
    rows already read from an array in this batch (by identity), so that probes sharing hidden
    states (a rank sweep) read them once."""
    out = torch.empty((len(hidden_states), tok.size, hidden_states[0].shape[1]), dtype=torch.float32, device=device)
    for k, v in enumerate(hidden_states):
        if id(v) in gathered:
            out[k].copy_(gathered[id(v)])
        else:
            gathered[id(v)] = gather(v, tok, out[k])
    return out
