greet() {
  local name="$1"
  # say hello
  echo "hi $name"
}
