fun max(a: Int, b: Int): Int {
    // larger
    return if (a > b) a else b
}
