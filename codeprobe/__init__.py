"""codeprobe."""
