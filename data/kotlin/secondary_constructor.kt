constructor(name: String) : this(name, 0) {
    require(name.isNotBlank())
}
