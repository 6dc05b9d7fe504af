"""codeprobe: probe what code models know about syntax.

Layers, each using only those before it:
syntax (tree-sitter trees, tokens, distances) -> alignment (subwords to tokens) -> model
(attention and hidden states) -> probes (CAT-probing, AST-Probe) -> pipeline (datasets, flows)
-> CLI and reports.
"""

__version__ = "0.1.0"
