public int add(int a, int b) {
    // sum
    return a + b;
}
