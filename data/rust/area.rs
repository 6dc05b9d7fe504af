pub fn area(&self) -> f64 {
    self.width * self.height
}
