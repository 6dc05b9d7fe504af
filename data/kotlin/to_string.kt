override fun toString(): String = "P($x, $y)"
