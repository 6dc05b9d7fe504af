public Point(int x, int y) { X = x; Y = y; }
