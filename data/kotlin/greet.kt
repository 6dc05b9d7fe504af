fun greet(name: String) = println("hi $name")
