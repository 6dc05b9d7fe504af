def max(a: Int, b: Int): Int = {
  // larger
  if (a > b) a else b
}
