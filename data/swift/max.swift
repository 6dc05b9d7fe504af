func max(_ a: Int, _ b: Int) -> Int {
    // larger
    return a > b ? a : b
}
