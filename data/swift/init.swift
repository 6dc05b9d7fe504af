init(x: Int, y: Int) {
    self.x = x
    self.y = y
}
