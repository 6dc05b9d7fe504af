override def toString: String = s"P($x, $y)"
