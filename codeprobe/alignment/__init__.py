"""Subword-to-code-token alignment by character offsets (pure numpy; knows nothing of models).

The rule (CAT-probing spec, step 2): a subword belongs to every code token its character span
overlaps (subword [s, e) overlaps token [a, b) iff s < b and a < e); special, empty and
whitespace-only subwords are ignored; a token no subword covers is dropped. Token-level
attention is then the block mean W A W^T and token hidden states W H, with W the pooling matrix.
"""

from codeprobe.alignment.align import Alignment, align, token_boundary_cut

__all__ = ["Alignment", "align", "token_boundary_cut"]
