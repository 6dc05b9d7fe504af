public int Add(int a, int b)
{
    // sum
    return a + b;
}
