"""Where a model's attention weights are caught: its attention modules, found from the model's
own declaration (`attention_modules`), and forward hooks on them that hand each layer's weights
to the batch's pooling as soon as the layer has run (`AttentionHooks`)."""

from __future__ import annotations

from typing import Any

import torch

from codeprobe.errors import ModelLoadError
from codeprobe.model.pooling import KernelPooling, SparsePooling


class AttentionHooks:
    """Forward hooks that hand each layer's attention weights to the batch's pooling as soon as
    the layer has run, so only one layer's (B x heads x n x n) weights are ever alive."""

    def __init__(self, modules: list[tuple[torch.nn.Module, int]], pooling: KernelPooling | SparsePooling):
        self.pooling = pooling
        self.n_layers = 0
        self.handles = [m.register_forward_hook(self._make_hook(i)) for m, i in modules]

    def _make_hook(self, index: int):
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            weights = output[index] if isinstance(output, tuple) else None
            if weights is None:
                raise ModelLoadError(
                    f"{type(module).__name__} returned no attention weights: the model must use eager attention"
                )
            self.pooling.pool_attention(self.n_layers, weights)
            self.n_layers += 1

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def attention_modules(model: torch.nn.Module) -> list[tuple[torch.nn.Module, int]]:
    """(module, output index of its attention weights) in forward order.

    Uses the model's own declaration of where attentions come from (transformers'
    `_can_record_outputs`, the table behind `output_attentions`), so it follows every
    architecture transformers supports in that way.
    """
    from transformers.utils.output_capturing import OutputRecorder

    specs = getattr(model, "_can_record_outputs", None) or {}
    spec = specs.get("attentions")
    if spec is None:
        raise ModelLoadError(
            f"{type(model).__name__} does not declare its attention modules; codeprobe cannot capture its attention"
        )
    specs_list = spec if isinstance(spec, list) else [spec]
    found = []
    for name, module in model.named_modules():
        dotted = f".{name}."
        for s in specs_list:
            if not isinstance(s, OutputRecorder):
                s = OutputRecorder(
                    target_class=None if isinstance(s, str) else s,
                    index=1,
                    class_name=s if isinstance(s, str) else None,
                )
            by_class = s.target_class is not None and isinstance(module, s.target_class)
            by_name = s.class_name is not None and f".{name}".endswith(s.class_name)
            if (by_class or by_name) and (s.layer_name is None or f".{s.layer_name.strip('.')}." in dotted):
                found.append((module, s.index))
                break
    return found
