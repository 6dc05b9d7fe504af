"""Slow, obviously-correct oracle for extraction: one snippet, no padding, the tokenizer's own
framing, `output_attentions=True`, and block means / subword means computed with loops."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from alignment.alignment_oracle import oracle_align, oracle_cut

CODE_WITH_TRAPS = (
    "def ünïcode(x, y='</s> <s> [CLS] <|endoftext|>'):\n"
    '    """Ça marche ﬁne."""\n'
    '    return {"k": x**2 + y}  # comment\n'
)


@dataclass
class OracleResult:
    tokens: list[int]
    attention: np.ndarray  # (L, k, k) or (L, H, k, k)
    hidden_states: np.ndarray  # (L + 1, k, hidden)
    truncated: bool


def oracle_extract(loaded, code, starts, ends, *, max_subwords=None, per_head=False, head_max=False, unixcoder=False):
    tok, model = loaded.tokenizer, loaded.model
    enc = tok(
        code,
        add_special_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        split_special_tokens=True,
    )
    ids, spans, special = list(enc["input_ids"]), list(enc["offset_mapping"]), list(enc["special_tokens_mask"])
    if unixcoder:  # UniXcoder's unixcoder.py: <s> <encoder-only> </s> code </s>
        content = [p for p in range(len(ids)) if not special[p]]
        mode = tok.convert_tokens_to_ids("<encoder-only>")
        ids = [tok.cls_token_id, mode, tok.sep_token_id] + [ids[p] for p in content] + [tok.sep_token_id]
        spans = [(0, 0)] * 3 + [spans[p] for p in content] + [(0, 0)]
        special = [1, 1, 1] + [0] * len(content) + [1]
    orc = oracle_align(code, spans, starts, ends, special)
    keep = list(range(len(ids)))
    rows = list(range(len(orc.kept)))
    truncated = max_subwords is not None and len(ids) > max_subwords
    if truncated:
        content = [p for p in range(len(ids)) if not special[p]]
        budget = max_subwords - (len(ids) - len(content))
        k = oracle_cut([[content.index(p) for p in mem] for mem in orc.members], len(content), budget)
        dropped = set(content[k:])
        keep = [p for p in range(len(ids)) if p not in dropped]
        rows = [r for r, mem in enumerate(orc.members) if not dropped.intersection(mem)]
    new_pos = {p: i for i, p in enumerate(keep)}
    members = [[new_pos[p] for p in orc.members[r]] for r in rows]

    with torch.inference_mode():
        out = model(
            input_ids=torch.tensor([[ids[p] for p in keep]], device=loaded.device),
            output_attentions=True,
            output_hidden_states=True,
        )
    layers = []
    for a in out.attentions:
        a = a[0].double().cpu().numpy()  # (H, n, n)
        heads = a if per_head else (a.max(0) if head_max else a.mean(0))[None]
        block = np.zeros((heads.shape[0], len(members), len(members)))
        for h in range(heads.shape[0]):
            for i, si in enumerate(members):
                for j, sj in enumerate(members):
                    block[h, i, j] = np.mean([heads[h, p, q] for p in si for q in sj])
        layers.append(block if per_head else block[0])
    hidden_states = []
    for hs in out.hidden_states:
        hs = hs[0].double().cpu().numpy()
        hidden_states.append(np.array([hs[si].mean(0) for si in members]).reshape(len(members), -1))
    return OracleResult([orc.kept[r] for r in rows], np.array(layers), np.array(hidden_states), truncated)
