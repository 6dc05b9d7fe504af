public override string ToString() => $"({X}, {Y})";
