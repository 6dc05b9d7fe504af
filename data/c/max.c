int max(int a, int b) {
    /* larger */
    return a > b ? a : b;
}
