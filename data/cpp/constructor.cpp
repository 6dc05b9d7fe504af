Point(int x, int y) : x_(x), y_(y) {}
