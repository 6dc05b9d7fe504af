@Override
public String toString() { return "P(" + x + ")"; }
